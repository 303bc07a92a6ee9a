// The admins' workbook: KQL over the app's custom events (customEvents in Application Insights), which mirror
// the ledger. The queries live in infra/queries so the tests can check every event name against the code.
@description('Display name of the workbook.')
param displayName string

@description('Region of the workbook.')
param location string

@description('Tags of the workbook.')
param tags object = {}

@description('Resource id of Application Insights, the workbook\'s data source.')
param appInsightsId string

var resourceType = 'microsoft.insights/components'

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## Koncernservice automations\nRuns, automation rate, hand-off reasons, poison queues, stuck and failed items and the sweeper\'s heartbeat, from the app\'s events. The ledger tables (Storage browser) remain the source of truth: find a run there by its run id.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        style: 'pills'
        queryType: 0
        resourceType: resourceType
        parameters: [
          {
            id: '6f1e3a0c-5b7d-4c55-9a0e-2f8d1c3b4a51'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: {
              durationMs: 86400000
            }
            typeSettings: {
              selectableValues: [
                {
                  durationMs: 3600000
                }
                {
                  durationMs: 86400000
                }
                {
                  durationMs: 604800000
                }
                {
                  durationMs: 2592000000
                }
              ]
            }
          }
        ]
      }
    }
    {
      type: 3
      name: 'runs'
      content: {
        version: 'KqlItem/1.0'
        title: 'Runs per automation: status and item counts'
        query: loadTextContent('../queries/workbook-runs.kql')
        size: 0
        queryType: 0
        resourceType: resourceType
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'automation-rate'
      content: {
        version: 'KqlItem/1.0'
        title: 'Automation rate: done / (done + handed off)'
        query: loadTextContent('../queries/workbook-automation-rate.kql')
        size: 0
        queryType: 0
        resourceType: resourceType
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'handoff-reasons'
      content: {
        version: 'KqlItem/1.0'
        title: 'Hand-off reasons'
        query: loadTextContent('../queries/workbook-handoff-reasons.kql')
        size: 0
        queryType: 0
        resourceType: resourceType
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'poison-depth'
      content: {
        version: 'KqlItem/1.0'
        title: 'Poison queues (last reported depth)'
        query: loadTextContent('../queries/workbook-poison-depth.kql')
        size: 0
        queryType: 0
        resourceType: resourceType
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'stuck-and-failed'
      content: {
        version: 'KqlItem/1.0'
        title: 'Stuck runs (FASTLAAST) and failed items (TEKNISK_FEJL)'
        query: loadTextContent('../queries/workbook-stuck-and-failed.kql')
        size: 0
        queryType: 0
        resourceType: resourceType
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'heartbeat'
      content: {
        version: 'KqlItem/1.0'
        title: 'Heartbeat'
        query: loadTextContent('../queries/workbook-heartbeat.kql')
        size: 4
        queryType: 0
        resourceType: resourceType
        timeContextFromParameter: 'TimeRange'
        visualization: 'table'
      }
    }
  ]
  fallbackResourceIds: [
    appInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsId, 'automations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(workbookContent)
  }
}

output id string = workbook.id
