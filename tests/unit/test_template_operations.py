"""What an operator gets from the template: logs with a retention, access logs, alarms with
their parameters, capped claims, the dashboard, and a security scan that stays clean. The
runbook (docs/operations.md) and the template must not drift apart."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from localcloud.template import PROJECT_ROOT

RUNBOOK = (PROJECT_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
CHECKOV = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"

# Each alarm and the parameter that is its threshold.
ALARM_THRESHOLDS = {
    "Http5xxRateAlarm": "Http5xxRatePercent",
    **{f"{group}ErrorsAlarm": "FunctionErrorsThreshold" for group in
       ("JobRoutes", "WorkerRoutes", "QueueRoutes", "ScheduleRoutes", "LiveUpdates", "Background")},
    **{f"{group}ThrottlesAlarm": "FunctionThrottlesThreshold" for group in
       ("JobRoutes", "WorkerRoutes", "QueueRoutes", "ScheduleRoutes", "LiveUpdates", "Background")},
    "FanOutIteratorAgeAlarm": "StreamIteratorAgeMs",
    "QueueCountsIteratorAgeAlarm": "StreamIteratorAgeMs",
    "FanOutFailuresAlarm": "StreamFailuresThreshold",
    "QueueCountsFailuresAlarm": "StreamFailuresThreshold",
    "JobsTableThrottlesAlarm": "DynamoDBThrottlesThreshold",
    "ConnectionsTableThrottlesAlarm": "DynamoDBThrottlesThreshold",
    "JobsTableSystemErrorsAlarm": "DynamoDBSystemErrorsThreshold",
    "LeaseConflictsAlarm": "LeaseConflictsThreshold",
}  # fmt: skip


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return of_type(template, "AWS::Serverless::Function")


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads: its MetricStats, or its one metric."""
    props = alarm["Properties"]
    if "Metrics" in props:
        return [query["MetricStat"]["Metric"] for query in props["Metrics"] if "MetricStat" in query]
    return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"], "Dimensions": props["Dimensions"]}]


def log_group_of(template: dict[str, Any], reference: Any) -> dict[str, Any]:
    """The LogGroup resource a Ref or a GetAtt ...Arn points at."""
    name = reference.get("Ref") or reference.get("Fn::GetAtt", [None])[0]
    resource = template["Resources"][name]
    assert resource["Type"] == "AWS::Logs::LogGroup", name
    return resource


def test_every_function_logs_to_a_group_with_the_retention_parameter(template):
    default = template["Globals"]["Function"]["LoggingConfig"]
    for name, function in functions(template).items():
        config = function["Properties"].get("LoggingConfig", default)
        group = log_group_of(template, config["LogGroup"])
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    # Lambda refuses custom log group names that begin with "aws/".
    for group in of_type(template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert group["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/jobs/${AWS::StackName}/")


def access_log_format(settings: dict[str, Any]) -> dict[str, str]:
    """The access log's JSON, with each $context variable standing in for its value."""
    text = re.sub(r"(?<![\"\w])(\$context\.[\w.]+)", r'"\1"', settings["Format"])  # unquoted numbers
    parsed: dict[str, str] = json.loads(text)
    return parsed


@pytest.mark.parametrize(
    ("resource", "settings_path"),
    [("HttpApi", ("Properties", "AccessLogSettings")), ("WebSocketStage", ("Properties", "AccessLogSettings"))],
)
def test_both_api_stages_write_json_access_logs_with_the_request_id(template, resource, settings_path):
    settings = template["Resources"][resource]
    for key in settings_path:
        settings = settings[key]
    log_group_of(template, settings["DestinationArn"])
    fields = access_log_format(settings)
    assert fields["requestId"] == "$context.requestId"
    assert {"routeKey", "status", "integrationError", "authorizerError"} <= set(fields)


def test_the_functions_log_the_request_id_the_access_log_carries():
    """An access line and the function's lines of the same request meet on request_id."""
    from jobcore.http import endpoint

    source = Path(endpoint.__code__.co_filename).read_text(encoding="utf-8")
    assert 'request_id=(event.get("requestContext") or {}).get("requestId")' in source
    assert 'filter correlation_id = "ID" or request_id = "ID" or requestId = "ID"' in RUNBOOK


def test_every_alarm_exists_with_its_threshold_parameter_and_the_optional_topic(template):
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert set(alarms) == set(ALARM_THRESHOLDS)
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        parameter = ALARM_THRESHOLDS[name]
        assert props["Threshold"] == {"Ref": parameter}, name
        assert "Default" in template["Parameters"][parameter] and "Description" in template["Parameters"][parameter]
        topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
        assert props["AlarmActions"] == topic and props["OKActions"] == topic, name
        assert props["TreatMissingData"] == "notBreaching"
        # CloudWatch takes at most 10 metrics in a metric math alarm, and one answer.
        assert len(alarm_metrics(alarm)) <= 10, name
        if "Metrics" in props:
            assert sum(1 for query in props["Metrics"] if query.get("ReturnData")) == 1, name
    assert template["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_every_alarm_has_its_section_in_the_runbook(template):
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', RUNBOOK))
    for name, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        slug = alarm["Properties"]["AlarmName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        assert slug in anchors, name
        assert alarm["Properties"]["AlarmDescription"].endswith(f"docs/operations.md#{slug}."), name
    alarms = of_type(template, "AWS::CloudWatch::Alarm").values()
    read = sum(len(alarm_metrics(alarm)) for alarm in alarms)
    assert f"the {len(alarms)} alarms read {read} metrics" in RUNBOOK


def test_every_function_is_watched_for_errors_and_for_throttles_exactly_once(template):
    watched: dict[str, list[str]] = {"Errors": [], "Throttles": []}
    for alarm in of_type(template, "AWS::CloudWatch::Alarm").values():
        for metric in alarm_metrics(alarm):
            if metric["Namespace"] == "AWS/Lambda" and metric["MetricName"] in watched:
                (dimension,) = metric["Dimensions"]
                watched[metric["MetricName"]].append(dimension["Value"]["Ref"])
    for metric, names in watched.items():
        assert sorted(names) == sorted(functions(template)), metric


def test_the_stream_consumers_and_their_failure_queues_are_watched(template):
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    consumers = [name for name, f in functions(template).items()
                 if any(e["Type"] == "DynamoDB" for e in (f["Properties"].get("Events") or {}).values())]  # fmt: skip
    for consumer in consumers:
        ages = [a for a in alarms.values() if any(m["MetricName"] == "IteratorAge" and
                m["Dimensions"][0]["Value"] == {"Ref": consumer} for m in alarm_metrics(a))]  # fmt: skip
        assert len(ages) == 1, consumer
        event = next(iter(functions(template)[consumer]["Properties"]["Events"].values()))
        queue = event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        depths = [a for a in alarms.values() if any(m["MetricName"] == "ApproximateNumberOfMessagesVisible" and
                  m["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue, "QueueName"]} for m in alarm_metrics(a))]  # fmt: skip
        assert len(depths) == 1, queue


def test_the_lease_conflicts_alarm_reads_the_metric_the_claim_counts(template):
    from jobcore.engine import leasing

    alarm = template["Resources"]["LeaseConflictsAlarm"]["Properties"]
    assert f'count("{alarm["MetricName"]}"' in Path(leasing.__file__).read_text(encoding="utf-8")
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Namespace"] == namespace
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]}
    ]


def test_the_claim_functions_concurrency_is_capped_by_a_parameter(template):
    for name in ("ClaimJobFunction", "ClaimAnyFunction"):
        reserved = functions(template)[name]["Properties"]["ReservedConcurrentExecutions"]
        assert reserved == {"Fn::If": ["CapClaims", {"Ref": "ClaimConcurrency"}, {"Ref": "AWS::NoValue"}]}
    reserved = functions(template)["AuthorizerFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["CapAuthorizer", {"Ref": "AuthorizerConcurrency"}, {"Ref": "AWS::NoValue"}]}
    # 0 means "no reservation" (a reservation of 0 would stop the function).
    assert template["Conditions"]["CapClaims"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ClaimConcurrency"}, 0]}]}
    assert template["Parameters"]["ClaimConcurrency"]["Default"] > 0
    # The account keeps 100 unreserved of its default 1,000.
    parameters = template["Parameters"]
    assert 2 * parameters["ClaimConcurrency"]["Default"] + parameters["AuthorizerConcurrency"]["Default"] <= 900
    # Every other function shares the pool: nothing else reserves.
    capped = {n for n, f in functions(template).items() if "ReservedConcurrentExecutions" in f["Properties"]}
    assert capped == {"ClaimJobFunction", "ClaimAnyFunction", "AuthorizerFunction"}


def dashboard(template: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The dashboard's body, and the names it substitutes."""
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}!]+)\}", body))
    return json.loads(re.sub(r"\$\{[^}]+\}", "X", body)), names


def test_the_dashboard_is_json_whose_every_substitution_resolves(template):
    widgets, names = dashboard(template)
    assert widgets["widgets"]
    for name in names:
        resource = name.split(".")[0]
        assert resource in template["Resources"] or name in ("AWS::Region", "AWS::StackName"), name
    for widget in widgets["widgets"]:
        assert widget["x"] + widget["width"] <= 24


def test_the_dashboard_shows_every_function_every_alarm_and_the_queues(template):
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    _, names = dashboard(template)
    assert set(functions(template)) <= names
    assert {f"{alarm}.Arn" for alarm in of_type(template, "AWS::CloudWatch::Alarm")} <= names
    for metric in ("JobsCreated", "JobsCompleted", "JobsFailed"):
        assert f'{{\\"Jobs/${{AWS::StackName}}\\",queue,service}} MetricName=\\"{metric}\\"' in body
    for needed in ("Latency", "IteratorAge", "ConsumedWriteCapacityUnits", "ThrottledRequests", "http-access"):
        assert needed in body, needed


def test_the_domain_metrics_the_dashboard_reads_are_counted_by_the_code(template):
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    source = "".join(p.read_text(encoding="utf-8") for p in (PROJECT_ROOT / "layers" / "jobs" / "jobcore").rglob("*.py"))
    counted = set(re.findall(r'"(Jobs[A-Z]\w+|LeaseConflicts|UpdatesSent|ConnectionsGone)"', source))
    read = set(re.findall(r'"(Jobs[A-Z]\w+|LeaseConflicts|UpdatesSent|ConnectionsGone)\\?"', body))
    assert read and read <= counted, read - counted


def test_every_scan_finding_skipped_says_why(template):
    for name, resource in template["Resources"].items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
            assert len(skip["comment"]) >= 40, (name, skip["id"])
            assert skip["id"] in RUNBOOK, skip["id"]


def test_the_scan_fails_on_a_new_finding(tmp_path):
    """`make scan` passes on the template (make test runs it); the same scan must fail when a
    finding appears, here the connections table's point-in-time recovery decision undone."""
    assert CHECKOV.exists(), "checkov is installed by `make scan` (part of `make test`)"
    text = (PROJECT_ROOT / "template.yaml").read_text(encoding="utf-8")
    skip = re.search(r"\n          - id: CKV_AWS_28\n            comment: [^\n]+", text)
    assert skip is not None
    changed = tmp_path / "template.yaml"
    changed.write_text(text.replace(skip.group(0), ""), encoding="utf-8")
    run = subprocess.run(
        [str(CHECKOV), "-f", str(changed), "--framework", "cloudformation", "--compact", "--quiet"],
        check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "CKV_AWS_28" in run.stdout and "ConnectionsTable" in run.stdout
