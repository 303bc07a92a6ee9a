// Event Grid system topic on the work storage account. The subscriptions (one per blob-triggered function)
// need the blobs_extension system key, which exists only once code is deployed: infra/hooks/postdeploy.sh
// creates them. Events that cannot be delivered go to the dead-letter container, written by the topic's
// own identity (the account takes no shared keys).
@description('System topic name.')
param name string

@description('Region of the topic (the storage account\'s).')
param location string

@description('Tags of the topic.')
param tags object = {}

@description('Name of the work storage account whose blob events the topic carries.')
param storageAccountName string

@description('Container in that account for events Event Grid could not deliver.')
param deadLetterContainerName string

// Built-in role definition.
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource deadLetter 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// Storage Blob Data Contributor
resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetter.id, topic.id, storageBlobDataContributor)
  scope: deadLetter
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output name string = topic.name
