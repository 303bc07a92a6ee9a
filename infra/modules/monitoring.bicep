// Log Analytics and workspace-based Application Insights with local authentication off: the app sends
// telemetry with its identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING and Monitoring Metrics Publisher).
@description('Log Analytics workspace name.')
param workspaceName string

@description('Application Insights name.')
param appInsightsName string

@description('Region of both.')
param location string

@description('Tags of both.')
param tags object = {}

@description('Days Log Analytics keeps telemetry (events carry ids and reason codes, never personal data).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 90

@description('Principal id of the app\'s user-assigned identity.')
param identityPrincipalId string

@description('Object id of the admin group that may query the logs; empty for none.')
param adminGroupObjectId string = ''

// Built-in role definitions.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

// Monitoring Metrics Publisher
resource identityMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Log Analytics Reader
resource adminLogReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminGroupObjectId)) {
  name: guid(workspace.id, adminGroupObjectId, logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
    principalId: adminGroupObjectId
    principalType: 'Group'
  }
}

output workspaceId string = workspace.id
output workspaceName string = workspace.name
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
