# logs-insights.jq: the CloudWatch Logs Insights queries of the replaced Lambda's troubleshooting
# guide ("Log Analysis"), each as a jq filter over a bmas log read raw and whole:
#   jq -R -s -L tests/integration 'include "logs-insights"; failed_objects' bmas.log
# Logs Insights' names: @message is the whole line as written, @timestamp the line's time (here
# its "timestamp" field), a field missing from a line is absent from the row, bin(1h) is the
# hour. Lines that are not JSON (a sanitizer report) are skipped, as Logs Insights finds no
# fields in them. See docs/logging.md section 5.

# Every JSON line with its @message and @timestamp.
def events:
  split("\n")[]
  | select(length > 0)
  | . as $m
  | (try fromjson catch null)
  | select(type == "object")
  | . + {"@message": $m, "@timestamp": .timestamp};

def hour: .[0:13];

# Logs Insights' `fields a, b`: the named fields a row has.
def fields($names): with_entries(select(.key as $k | $names | index($k)));

# fields @timestamp, @message, errorCode
# | filter @message like /BMAS-0/
# | sort @timestamp desc
# | limit 100
def all_errors:
  [events | select(."@message" | test("BMAS-0")) | fields(["@timestamp", "@message", "errorCode"])]
  | sort_by(."@timestamp") | reverse | .[:100];

# fields @timestamp, @duration, @memorySize, @maxMemoryUsed
# | filter @type = "REPORT"
# | stats avg(@duration) as avgDuration,
#         max(@duration) as maxDuration,
#         avg(@maxMemoryUsed/@memorySize*100) as avgMemoryPercent
#   by bin(1h)
# (The Lambda platform writes REPORT lines; bmas is not a Lambda, so this finds nothing.)
def processing_duration_report:
  [events | select(."@type" == "REPORT")]
  | group_by(."@timestamp" | hour)
  | map({"bin(1h)": (.[0]."@timestamp" | hour),
         avgDuration: (map(."@duration") | add / length),
         maxDuration: (map(."@duration") | max)});

# The same statistic over what bmas writes: processingTimeMs of each object's summary line.
#   fields @timestamp, metrics.processingTimeMs
#   | filter event = "object_processed"
#   | stats avg(metrics.processingTimeMs) as avgDuration, max(metrics.processingTimeMs) as
#     maxDuration, count(*) as objects by bin(1h)
def processing_duration:
  [events | select(.event == "object_processed")]
  | group_by(."@timestamp" | hour)
  | map({"bin(1h)": (.[0]."@timestamp" | hour),
         avgDuration: (map(.metrics.processingTimeMs) | add / length),
         maxDuration: (map(.metrics.processingTimeMs) | max),
         objects: length});

# fields @timestamp, inputTokens, outputTokens, inferenceProfile
# | filter @message like /aggregated/
# | stats sum(inputTokens) as totalInput,
#         sum(outputTokens) as totalOutput
#   by inferenceProfile, bin(1h)
def token_aggregation:
  [events | select(."@message" | test("aggregated"))
   | fields(["@timestamp", "inputTokens", "outputTokens", "inferenceProfile"])]
  | group_by([.inferenceProfile, (."@timestamp" | hour)])
  | map({inferenceProfile: .[0].inferenceProfile,
         "bin(1h)": (.[0]."@timestamp" | hour),
         totalInput: (map(.inputTokens // 0) | add),
         totalOutput: (map(.outputTokens // 0) | add)});

# fields @timestamp, bucket, key, errorCode
# | filter errorCode in ['BMAS-001', 'BMAS-002', 'BMAS-003']
# | sort @timestamp desc
# | limit 50
def failed_objects:
  [events | select(.errorCode as $c | ["BMAS-001", "BMAS-002", "BMAS-003"] | index($c))
   | fields(["@timestamp", "bucket", "key", "errorCode"])]
  | sort_by(."@timestamp") | reverse | .[:50];
