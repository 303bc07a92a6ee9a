// The Function app on Flex Consumption: Python 3.12 in functionAppConfig, the package in a blob container
// reached with the user-assigned identity, identity-based connections for host and work storage, secrets as
// Key Vault references. None of the settings Flex deprecates (FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*, ...) is set: Flex rejects them.
@description('Function app name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Region of the plan and the app.')
param location string

@description('Tags of the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('azd service name in azure.yaml; azd finds the app by this tag.')
param serviceName string = 'api'

@description('Memory of one instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Blob endpoint of the host storage account (AzureWebJobsStorage and the deployment package).')
param hostBlobEndpoint string

@description('Queue endpoint of the host storage account.')
param hostQueueEndpoint string

@description('Table endpoint of the host storage account.')
param hostTableEndpoint string

@description('Container of the host storage account that holds the deployment package.')
param deploymentContainerName string

@description('Blob endpoint of the work storage account (WorkStorage).')
param workBlobEndpoint string

@description('Queue endpoint of the work storage account.')
param workQueueEndpoint string

@description('Table endpoint of the work storage account.')
param workTableEndpoint string

@description('URI of the Key Vault that holds the secrets (ends with a slash).')
param keyVaultUri string

@description('Application Insights connection string (not a credential: local authentication is off).')
param appInsightsConnectionString string

@description('Days the ledger keeps a run (LEDGER_RETENTION_DAYS, the ledger_retention timer).')
param ledgerRetentionDays int

@description('Version of the deployed code, recorded on every run (CODE_VERSION).')
param codeVersion string

@description('Version of the current pseudonym key (PSEUDONYM_KEY_VERSION); raise it when the key is rotated.')
param pseudonymKeyVersion string

@description('ServiceNow instance base URL.')
param servicenowInstanceUrl string

@description('OAuth client id of the ServiceNow integration user.')
param servicenowClientId string

@description('ServiceNow table of the hand-off tasks.')
param handoffTable string

@description('Assignment group of the hand-off tasks.')
param handoffAssignmentGroup string

@description('sys_id of the ServiceNow catalog item for a new supplier.')
param vendorCatalogItem string

@description('Base URL of the CVR register API.')
param cvrBaseUrl string

@description('User of the CVR API.')
param cvrUsername string

@description('Base URL of Kvantum\'s vendor API.')
param kvantumBaseUrl string

@description('Kvantum integration user.')
param kvantumUsername string

@description('Base URL of Opus Debitor\'s receivables service.')
param opusDebitorBaseUrl string

@description('Opus Debitor integration user.')
param opusDebitorUsername string

@description('Who is told about a claims file whose uploader is not recorded.')
param claimsFallbackRecipient string

@description('Entra ID authority for Graph tokens.')
param graphAuthority string

@description('Microsoft Graph base URL.')
param graphBaseUrl string

@description('Client id of the app registration that sends mail through Graph.')
param graphClientId string

@description('Mailbox that receipts and notices are sent from.')
param mailSender string

var secretPrefix = '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/'

// Every setting the code reads (shared/settings.py; `devhost manifest` lists them); tests/infra checks this
// object against the code. Not here: the WorkStorage connection string (the identity-based form instead).
var appSettings = {
  // Host storage, identity-based (never a connection string, never the __serviceUri alias).
  AzureWebJobsStorage__blobServiceUri: hostBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: hostQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: hostTableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // The app's own data: ledger tables, work queues, containers.
  WorkStorage__blobServiceUri: workBlobEndpoint
  WorkStorage__queueServiceUri: workQueueEndpoint
  WorkStorage__tableServiceUri: workTableEndpoint
  WorkStorage__credential: 'managedidentity'
  WorkStorage__clientId: identityClientId
  // Application Insights with local authentication off.
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // Secrets: Key Vault references resolved with keyVaultReferenceIdentity (values set by the operator).
  PSEUDONYM_KEY: '${secretPrefix}pseudonym-key/)'
  PSEUDONYM_PREVIOUS_KEYS: '${secretPrefix}pseudonym-previous-keys/)'
  SERVICENOW_CLIENT_SECRET: '${secretPrefix}servicenow-client-secret/)'
  CVR_PASSWORD: '${secretPrefix}cvr-password/)'
  KVANTUM_PASSWORD: '${secretPrefix}kvantum-password/)'
  OPUS_DEBITOR_PASSWORD: '${secretPrefix}opus-debitor-password/)'
  GRAPH_CLIENT_SECRET: '${secretPrefix}graph-client-secret/)'
  // Per environment (azd environment values, main.parameters.json).
  PSEUDONYM_KEY_VERSION: pseudonymKeyVersion
  CODE_VERSION: codeVersion
  LEDGER_RETENTION_DAYS: string(ledgerRetentionDays)
  SERVICENOW_INSTANCE_URL: servicenowInstanceUrl
  SERVICENOW_CLIENT_ID: servicenowClientId
  HANDOFF_TABLE: handoffTable
  HANDOFF_ASSIGNMENT_GROUP: handoffAssignmentGroup
  VENDOR_CATALOG_ITEM: vendorCatalogItem
  CVR_BASE_URL: cvrBaseUrl
  CVR_USERNAME: cvrUsername
  KVANTUM_BASE_URL: kvantumBaseUrl
  KVANTUM_USERNAME: kvantumUsername
  OPUS_DEBITOR_BASE_URL: opusDebitorBaseUrl
  OPUS_DEBITOR_USERNAME: opusDebitorUsername
  CLAIMS_FALLBACK_RECIPIENT: claimsFallbackRecipient
  GRAPH_AUTHORITY: graphAuthority
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_CLIENT_ID: graphClientId
  MAIL_SENDER: mailSender
  // Schedules: NCRONTAB, six fields with seconds first, UTC (Flex has no WEBSITE_TIME_ZONE).
  RUN_CLOSER_SCHEDULE: '0 */1 * * * *'
  SWEEPER_SCHEDULE: '0 */5 * * * *'
  LEDGER_RETENTION_SCHEDULE: '0 15 2 * * *'
  VENDOR_INTAKE_SCHEDULE: '0 */15 * * * 1-5'
  VENDOR_CONTROL_LIST_SCHEDULE: '0 30 5 * * *'
  // Tuning: the same values as the code's defaults unless a deployment needs otherwise.
  CHUNK_SIZE: '500'
  MAX_ATTEMPTS: '5'
  MAX_DEQUEUE_COUNT: '5'
  STEP_TIME_BUDGET_SECONDS: '300'
  BACKOFF_BASE_SECONDS: '30'
  BACKOFF_MAX_SECONDS: '3600'
  ITEMS_PER_BUCKET: '5000'
  STUCK_AFTER_MINUTES: '240'
  SCHEDULE_GRACE_MINUTES: '10'
  INBOX_GRACE_MINUTES: '15'
  INBOX_LOOKBACK_HOURS: '72'
  SERVICENOW_TIMEOUT_SECONDS: '30'
  CVR_TIMEOUT_SECONDS: '20'
  KVANTUM_TIMEOUT_SECONDS: '30'
  OPUS_DEBITOR_TIMEOUT_SECONDS: '30'
  CHART_OF_ACCOUNTS_CACHE_SECONDS: '300'
  GRAPH_TIMEOUT_SECONDS: '30'
  CVR_CONCURRENCY: '4'
  KVANTUM_CONCURRENCY: '2'
  OPUS_DEBITOR_CONCURRENCY: '4'
  RULES_FILE: ''
  // Read by glibc, not by the code: two malloc arenas instead of eight per core. The worker runs each invocation
  // on its own thread, and per-thread arenas kept a 100,000-claim run's freed blob buffers (benchmarks/claims.py:
  // peak RSS 302 MiB with the default, 225 MiB with 2, at 30,000 claims).
  MALLOC_ARENA_MAX: '2'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy of a Flex Consumption plan exists only in some regions; the app's state is in zone-redundant storage and its work resumes from the queues
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:Event Grid cannot present client certificates to the blobs extension webhook (the app has no HTTP functions)
  // checkov:skip=CKV_AZURE_222:Event Grid delivers blob events to a public webhook; the app has no HTTP functions and the webhook needs the blobs_extension key
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero; queue and timer work waits for an instance, so always-ready instances would be paid for nothing
  // checkov:skip=CKV_AZURE_213:No HTTP functions to probe; the sweeper's Heartbeat and its alert watch the app instead
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.12'
      }
    }
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
