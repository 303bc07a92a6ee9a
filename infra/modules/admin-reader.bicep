// The admin group sees the resource group's resources in the portal (the workbook, the function's invocations,
// the Storage browser); the data roles that let it read the ledger and the logs are on the account and workspace.
@description('Object id of the admin group.')
param adminGroupObjectId string

// Built-in role definition.
var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

// Reader
resource adminReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, adminGroupObjectId, reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
    principalId: adminGroupObjectId
    principalType: 'Group'
  }
}
