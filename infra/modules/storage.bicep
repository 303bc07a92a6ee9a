// A storage account reached only with Entra ID (no shared keys), with its containers, queues, tables,
// soft delete, lifecycle rules and the roles of the app's identity. Used twice: the app's data and the host's.
@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Region of the account.')
param location string

@description('Tags of the account.')
param tags object = {}

@description('Replication of the account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_ZRS'

@description('Blob containers to create.')
param containers array = []

@description('Queues to create: every work queue and its -poison twin.')
param queues array = []

@description('Tables to create.')
param tables array = []

@description('Lifecycle rules, each {name, prefixes, days}: block blobs under the prefixes are deleted that many days after they were last written.')
param retentionRules array = []

@description('Days a deleted blob or container can be restored (soft delete).')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 7

@description('Principal id of the app\'s user-assigned identity.')
param identityPrincipalId string

@description('Whether the identity needs the Table service (the data account: the ledger). The host needs blobs and queues only.')
param identityNeedsTables bool = true

@description('Object id of the admin group that may read the tables (the ledger) in the Storage browser; empty for none.')
param adminGroupObjectId string = ''

@description('A container the app identity may read and delete in but never write to (the claims inbox: only the case system writes there). Empty: none.')
param writeProtectedContainer string = ''

// Built-in role definitions (ids are the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageTableDataReader = '76199698-9eea-4c19-bc75-cec21354c6b6'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration reaches storage over its public endpoint; access is Entra ID only (no shared keys), RBAC per identity
  // checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: no VNet integration or private endpoints in this deployment; shared keys are off
  // checkov:skip=CKV_AZURE_206:Zone-redundant (ZRS) by default and a parameter; geo-replication is a per-environment cost decision
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in containers: {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queues: {
  parent: queueService
  name: queue
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in tables: {
  parent: tableService
  name: table
}]

// Retention of blobs by what they hold; tables have no lifecycle rules (the app's ledger_retention timer keeps them).
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (!empty(retentionRules)) {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [for rule in retentionRules: {
        enabled: true
        name: rule.name
        type: 'Lifecycle'
        definition: {
          filters: {
            blobTypes: [
              'blockBlob'
            ]
            prefixMatch: rule.prefixes
          }
          actions: {
            baseBlob: {
              delete: {
                daysAfterModificationGreaterThan: rule.days
              }
            }
            snapshot: {
              delete: {
                daysAfterCreationGreaterThan: rule.days
              }
            }
          }
        }
      }]
    }
  }
}

// An ABAC condition on the identity's blob role: no blob write or append in the write-protected container
// (reading and deleting - moving a file out - stay allowed).
var writeProtection = '((!(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write\'}) AND !(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action\'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringNotEquals \'${writeProtectedContainer}\'))'

// Storage Blob Data Owner
resource identityBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, identityPrincipalId, storageBlobDataOwner)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    condition: empty(writeProtectedContainer) ? null : writeProtection
    conditionVersion: empty(writeProtectedContainer) ? null : '2.0'
  }
}

// Storage Queue Data Contributor
resource identityQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, identityPrincipalId, storageQueueDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor
resource identityTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (identityNeedsTables) {
  name: guid(account.id, identityPrincipalId, storageTableDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Reader
resource adminTableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminGroupObjectId)) {
  name: guid(account.id, adminGroupObjectId, storageTableDataReader)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataReader)
    principalId: adminGroupObjectId
    principalType: 'Group'
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
