// Alert rules over the app's custom events, to an action group that mails the operators: a poison message,
// an item handed off on technical failure, a missed schedule, a missing heartbeat.
@description('Prefix of the rule and action group names.')
param namePrefix string

@description('Region of the rules.')
param location string

@description('Tags of the rules and the action group.')
param tags object = {}

@description('Resource id of Application Insights, the rules\' data source.')
param appInsightsId string

@description('E-mail address (a shared mailbox or list) that receives the alerts.')
param alertEmail string

var rules = [
  {
    name: 'poison-message'
    displayName: 'Poison message'
    description: 'A message is in a poison queue. Fix the cause, then replay the queue (infra/README.md).'
    severity: 1
    query: loadTextContent('../queries/alert-poison-message.kql')
    timeAggregation: 'Maximum'
    metricMeasureColumn: 'depth'
    operator: 'GreaterThan'
    threshold: 0
    dimension: 'queue'
    windowSize: 'PT10M'
  }
  {
    name: 'technical-failure'
    displayName: 'Item handed off on technical failure'
    description: 'An item failed technically on its last attempt and was handed to a person (TEKNISK_FEJL).'
    severity: 2
    query: loadTextContent('../queries/alert-technical-failure.kql')
    timeAggregation: 'Count'
    metricMeasureColumn: ''
    operator: 'GreaterThan'
    threshold: 0
    dimension: 'automation'
    windowSize: 'PT5M'
  }
  {
    name: 'schedule-missed'
    displayName: 'Scheduled run missed'
    description: 'A scheduled automation has no run since its last due time (ScheduleMissed).'
    severity: 2
    query: loadTextContent('../queries/alert-schedule-missed.kql')
    timeAggregation: 'Count'
    metricMeasureColumn: ''
    operator: 'GreaterThan'
    threshold: 0
    dimension: 'automation'
    windowSize: 'PT10M'
  }
  {
    name: 'heartbeat-missing'
    displayName: 'Heartbeat missing'
    description: 'No Heartbeat in 15 minutes: the sweeper, the telemetry exporter or the app has stopped.'
    severity: 1
    query: loadTextContent('../queries/alert-heartbeat-missing.kql')
    timeAggregation: 'Count'
    metricMeasureColumn: ''
    operator: 'LessThan'
    threshold: 1
    dimension: ''
    windowSize: 'PT15M'
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'ks-ops'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: rule.windowSize
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: rule.timeAggregation
          metricMeasureColumn: empty(rule.metricMeasureColumn) ? null : rule.metricMeasureColumn
          operator: rule.operator
          threshold: rule.threshold
          dimensions: empty(rule.dimension) ? [] : [
            {
              name: rule.dimension
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

output actionGroupId string = actionGroup.id
