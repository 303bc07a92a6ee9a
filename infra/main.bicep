// Everything the Koncernservice automations need in Azure, provisioned by `azd up` (infra/README.md).
// What to provision comes from the code: `./dev devhost manifest`; tests/infra checks the two agree.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource.')
param location string

@description('Principal id of the operator running azd (AZURE_PRINCIPAL_ID): may set the Key Vault secrets; empty for none.')
param operatorPrincipalId string = ''

@description('Type of that principal: User, or ServicePrincipal when a pipeline deploys.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Object id of the Entra ID group of admins: they read the ledger tables and the logs.')
param adminGroupObjectId string

@description('E-mail address that receives the alerts.')
param alertEmail string

@description('Principal id (object id) of the case system\'s identity, the only outside writer of the claims inbox; empty until it exists.')
param claimsInboxWriterPrincipalId string = ''

@description('Days raw input that carries personal data is kept: inboxes and the work container.')
@minValue(1)
param rawInputRetentionDays int = 30

@description('Days posting files and batch reports (accounting records) are kept: 5 years.')
@minValue(1826)
param accountingRecordsRetentionDays int = 1826

@description('Days rejected files, error reports and dead-lettered events are kept; they follow the raw input.')
@minValue(1)
param rejectedRetentionDays int = 30

@description('Days the ledger keeps a run with its items, history and mail rows (app setting LEDGER_RETENTION_DAYS).')
@minValue(30)
param ledgerRetentionDays int = 1826

@description('Days a deleted blob or container can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 7

@description('Replication of the work storage account.')
param workStorageSku string = 'Standard_ZRS'

@description('Memory of one Function app instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the Function app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Days Log Analytics keeps telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

@description('Version of the deployed code (CODE_VERSION); the postdeploy hook keeps it at the deployed commit.')
param codeVersion string = 'unversioned'

@description('Version of the current pseudonym key (PSEUDONYM_KEY_VERSION).')
param pseudonymKeyVersion string = '1'

@description('ServiceNow instance base URL, e.g. https://<instance>.service-now.com.')
param servicenowInstanceUrl string

@description('OAuth client id of the ServiceNow integration user.')
param servicenowClientId string

@description('ServiceNow table of the hand-off tasks.')
param handoffTable string = 'sc_task'

@description('Assignment group of the hand-off tasks.')
param handoffAssignmentGroup string = 'Koncernservice Økonomi'

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

@description('Client id of the app registration that sends mail through Microsoft Graph.')
param graphClientId string

@description('Mailbox (UPN) that receipts and notices are sent from.')
param mailSender string

@description('Microsoft Graph base URL.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  workload: 'koncernservice-automations'
}

// What the code uses in its work storage (`./dev devhost manifest`: queues with their -poison twins,
// containers, tables), plus the claims inbox (automation 2's file drop: provisioned now, with its writer role),
// the container for rejected files and error reports, and Event Grid's dead-letter container.
var workQueues = [
  'claim-payouts-decide'
  'claim-payouts-decide-poison'
  'claim-payouts-post'
  'claim-payouts-post-poison'
  'claim-payouts-returned'
  'claim-payouts-returned-poison'
  'claim-payouts-validate'
  'claim-payouts-validate-poison'
  'handoff'
  'handoff-poison'
  'inbox-pickup'
  'inbox-pickup-poison'
  'mail'
  'mail-poison'
  'vendor-onboarding-close'
  'vendor-onboarding-close-poison'
  'vendor-onboarding-create'
  'vendor-onboarding-create-poison'
  'vendor-onboarding-validate'
  'vendor-onboarding-validate-poison'
]
var workTables = [
  'history'
  'items0'
  'items1'
  'items2'
  'items3'
  'items4'
  'items5'
  'items6'
  'items7'
  'mails'
  'runs'
  'vendorscreated'
]
var claimsInboxContainer = 'claims-inbox'
var deadLetterContainer = 'eventgrid-deadletter'

// Every container belongs to one retention class (checked by tests/infra).
// Raw input with personal data: inboxes and the work container's chunk data.
var rawInputContainers = [
  'work'
  claimsInboxContainer
]
// Accounting records: posting files (Kvantum's outbox), Kvantum's responses, batch reports and control lists.
var accountingRecordContainers = [
  'kvantum-outbox'
  'kvantum-responses'
  'reports'
]
// Rejected files, error reports and undeliverable blob events: they follow the raw input.
var rejectedContainers = [
  'rejected'
  deadLetterContainer
]
// No lifecycle rule: the limiter's lease blobs, rewritten for as long as the app runs; the payout index,
// rewritten with every chunk and pruned by the code to the duplicate window (a lifecycle rule would delete a
// shard that is still in use).
var unmanagedContainers = [
  'limits'
  'payout-index'
]
var workContainers = concat(rawInputContainers, accountingRecordContainers, rejectedContainers, unmanagedContainers)

var rawInputPrefixes = [for container in rawInputContainers: '${container}/']
var accountingRecordPrefixes = [for container in accountingRecordContainers: '${container}/']
var rejectedPrefixes = [for container in rejectedContainers: '${container}/']
var retentionRules = [
  {
    name: 'raw-input'
    prefixes: rawInputPrefixes
    days: rawInputRetentionDays
  }
  {
    name: 'accounting-records'
    prefixes: accountingRecordPrefixes
    days: accountingRecordsRetentionDays
  }
  {
    name: 'rejected-and-error-reports'
    prefixes: rejectedPrefixes
    days: rejectedRetentionDays
  }
]

var deploymentContainer = 'app-package'

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-${token}'
    appInsightsName: 'appi-${token}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
    identityPrincipalId: identity.outputs.principalId
    adminGroupObjectId: adminGroupObjectId
  }
}

// Two accounts (infra/README.md): the app's data, with its retention rules, Event Grid topic and the admins'
// read access, apart from the host's internals (locks, timer state, function keys) and the deployment package.
module workStorage 'modules/storage.bicep' = {
  name: 'work-storage'
  scope: rg
  params: {
    name: 'st${token}'
    location: location
    tags: tags
    skuName: workStorageSku
    containers: workContainers
    queues: workQueues
    tables: workTables
    retentionRules: retentionRules
    softDeleteDays: softDeleteDays
    identityPrincipalId: identity.outputs.principalId
    identityNeedsTables: true
    adminGroupObjectId: adminGroupObjectId
    writeProtectedContainer: claimsInboxContainer
  }
}

module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  scope: rg
  params: {
    name: 'stfunc${token}'
    location: location
    tags: tags
    containers: [
      deploymentContainer
    ]
    softDeleteDays: softDeleteDays
    identityPrincipalId: identity.outputs.principalId
    identityNeedsTables: false
  }
}

module claimsInboxWriter 'modules/container-writer.bicep' = if (!empty(claimsInboxWriterPrincipalId)) {
  name: 'claims-inbox-writer'
  scope: rg
  params: {
    storageAccountName: workStorage.outputs.name
    containerName: claimsInboxContainer
    principalId: claimsInboxWriterPrincipalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: 'kv-${token}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'event-grid'
  scope: rg
  params: {
    name: 'evgt-${token}'
    location: location
    tags: tags
    storageAccountName: workStorage.outputs.name
    deadLetterContainerName: deadLetterContainer
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: 'func-${token}'
    planName: 'plan-${token}'
    location: location
    tags: tags
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostBlobEndpoint: hostStorage.outputs.blobEndpoint
    hostQueueEndpoint: hostStorage.outputs.queueEndpoint
    hostTableEndpoint: hostStorage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainer
    workBlobEndpoint: workStorage.outputs.blobEndpoint
    workQueueEndpoint: workStorage.outputs.queueEndpoint
    workTableEndpoint: workStorage.outputs.tableEndpoint
    keyVaultUri: keyVault.outputs.uri
    appInsightsConnectionString: monitoring.outputs.connectionString
    ledgerRetentionDays: ledgerRetentionDays
    codeVersion: codeVersion
    pseudonymKeyVersion: pseudonymKeyVersion
    servicenowInstanceUrl: servicenowInstanceUrl
    servicenowClientId: servicenowClientId
    handoffTable: handoffTable
    handoffAssignmentGroup: handoffAssignmentGroup
    vendorCatalogItem: vendorCatalogItem
    cvrBaseUrl: cvrBaseUrl
    cvrUsername: cvrUsername
    kvantumBaseUrl: kvantumBaseUrl
    kvantumUsername: kvantumUsername
    opusDebitorBaseUrl: opusDebitorBaseUrl
    opusDebitorUsername: opusDebitorUsername
    claimsFallbackRecipient: claimsFallbackRecipient
    graphAuthority: '${environment().authentication.loginEndpoint}${tenant().tenantId}'
    graphBaseUrl: graphBaseUrl
    graphClientId: graphClientId
    mailSender: mailSender
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    displayName: 'Koncernservice automations (${environmentName})'
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: 'ks-${environmentName}'
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmail: alertEmail
  }
}

module adminReader 'modules/admin-reader.bicep' = {
  name: 'admin-reader'
  scope: rg
  params: {
    adminGroupObjectId: adminGroupObjectId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output AZURE_STORAGE_ACCOUNT_NAME string = workStorage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = workStorage.outputs.id
output AZURE_HOST_STORAGE_ACCOUNT_NAME string = hostStorage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_APPLICATION_INSIGHTS_NAME string = monitoring.outputs.appInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.workspaceName
output AZURE_EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output AZURE_EVENTGRID_SYSTEM_TOPIC_ID string = eventGrid.outputs.id
output AZURE_EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainer
output AZURE_WORKBOOK_ID string = workbook.outputs.id
