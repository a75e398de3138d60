"""template.yaml and the code agree: the lint misses what these catch (DESIGN.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from jobcore import keys
from jobcore.engine.leasing import LONG_POLL_MARGIN_MS
from jobcore.settings import Limits
from localcloud.template import PROJECT_ROOT, TEMPLATE_PATH, tables


def jobs_table(template: dict[str, Any]) -> dict[str, Any]:
    return tables(template)["JobsTable"]


def test_indexes_in_the_template_are_the_ones_the_store_queries(template):
    declared = {gsi["IndexName"]: gsi for gsi in jobs_table(template)["GlobalSecondaryIndexes"]}
    used = {name for name in keys.INDEX_KEYS if name is not None}
    assert set(declared) == used
    for name, key_names in keys.INDEX_KEYS.items():
        if name is None:
            continue
        schema = [k["AttributeName"] for k in declared[name]["KeySchema"]]
        # A page of an index ends at the table's key and the index's own (which may reuse PK).
        assert tuple(a for a in schema if a not in ("PK", "SK")) == key_names[2:], name
        assert set(schema) <= set(key_names), name


def test_every_key_attribute_is_defined_and_written_by_the_engine(template):
    table = jobs_table(template)
    defined = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    key_attributes = {k["AttributeName"] for k in table["KeySchema"]}
    for gsi in table["GlobalSecondaryIndexes"]:
        key_attributes |= {k["AttributeName"] for k in gsi["KeySchema"]}
    assert set(defined) == key_attributes
    assert all(kind == "S" for kind in defined.values())
    # Jobs carry the index attributes; schedules carry next_run_at (while not paused).
    assert key_attributes - {"PK", "SK"} == set(keys.INDEX_ATTRIBUTES) | {"next_run_at"}


def test_queue_index_projects_what_a_claim_decides_on(template):
    queue = next(g for g in jobs_table(template)["GlobalSecondaryIndexes"] if g["IndexName"] == keys.QUEUE_INDEX)
    projected = set(queue["Projection"]["NonKeyAttributes"])
    needed = set(keys.CLAIM_READS)
    assert needed <= projected


def test_ended_index_projects_what_a_redrive_reads(template):
    ended = next(g for g in jobs_table(template)["GlobalSecondaryIndexes"] if g["IndexName"] == keys.ENDED_INDEX)
    assert set(keys.REDRIVE_READS) <= set(ended["Projection"]["NonKeyAttributes"])


def test_stream_and_ttl(template):
    table = jobs_table(template)
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_layer_builds_the_domain_package_with_python311(template):
    layer = template["Resources"]["JobsLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    content = PROJECT_ROOT / layer["Properties"]["ContentUri"]
    assert (content / "jobcore" / "__init__.py").is_file()
    assert (content / "requirements.txt").is_file()
    recipe = (content / "Makefile").read_text()
    assert "build-JobsLayer:" in recipe and "--requirement requirements.txt" in recipe
    assert "--python-version 3.11" in recipe and "manylinux2014_aarch64" in recipe  # the layer's runtime
    assert "--invalidation-mode unchecked-hash" in recipe  # bytecode Lambda loads without the source
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.11"]
    assert template["Globals"]["Function"]["Runtime"] == "python3.11"


def test_layer_requirements_match_the_project_pins():
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    for raw in (PROJECT_ROOT / "layers/jobs/requirements.txt").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            assert f'"{line}"' in pyproject, line


def test_cfn_lint_passes():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE_PATH)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_function_handler_module_exists_and_exposes_its_handler(template):
    from localcloud.functions import functions, load_handler

    specs = functions(template)
    assert specs, "no functions in the template"
    for spec in specs.values():
        assert spec.module_path.is_file(), f"{spec.logical_id}: {spec.module_path} missing"
        assert callable(load_handler(spec)), spec.logical_id


def test_every_http_function_has_one_route_and_its_own_module(template):
    from localcloud.functions import api_routes

    routes = api_routes(template)
    keys = [r.route_key for r in routes]
    assert len(keys) == len(set(keys))
    modules = [r.function.handler for r in routes]
    assert len(modules) == len(set(modules)), "two routes share a handler module"
    assert all(r.path.startswith("/v1/") for r in routes)


def test_only_the_console_is_outside_v1_and_without_the_authorizer(template):
    from localcloud.functions import http_routes

    open_routes = {(r.method, r.path, r.function.logical_id) for r in http_routes(template) if not r.authorized}
    assert open_routes == {("GET", "/", "ConsoleFunction"), ("GET", "/console/{asset+}", "ConsoleFunction")}
    assert all(r.path.startswith("/v1/") for r in http_routes(template) if r.authorized)
    console = template["Resources"]["ConsoleFunction"]["Properties"]
    assert "Policies" not in console, "the console reads no table: the page's calls carry the caller's token"


def test_functions_get_least_privilege(template):
    """Only named actions; DynamoDB ones on the template's tables (their indexes only for a
    Query or Scan); no managed CRUD policy."""
    from localcloud.functions import functions

    table_arns = [{"Fn::GetAtt": [name, "Arn"]} for name in tables(template)]
    for spec in functions(template).values():
        for policy in spec.properties.get("Policies", []):
            assert isinstance(policy, dict) and set(policy) == {"Statement"}, f"{spec.logical_id}: {policy}"
            for statement in policy["Statement"]:
                actions = statement["Action"]
                assert all("*" not in action for action in actions), spec.logical_id
                resources = statement["Resource"]
                assert resources, spec.logical_id
                if any(a.startswith("dynamodb:") for a in actions):
                    assert all(a.startswith("dynamodb:") for a in actions), spec.logical_id
                    tables_named = [r for r in resources if r in table_arns]
                    assert len(tables_named) == 1, spec.logical_id
                    uses_index = any(a in ("dynamodb:Query", "dynamodb:Scan") for a in actions)
                    index_arns = [r for r in resources if r not in table_arns]
                    assert len(index_arns) <= (1 if uses_index else 0), spec.logical_id
                    for arn in index_arns:
                        assert arn["Fn::Sub"].startswith("${" + tables_named[0]["Fn::GetAtt"][0] + ".Arn}/index/")


def test_runtime_settings_live_in_globals(template):
    function_globals = template["Globals"]["Function"]
    for key in ("Runtime", "Architectures", "Timeout", "Tracing", "Environment"):
        assert key in function_globals
    from localcloud.functions import functions

    for spec in functions(template).values():
        for key in ("Runtime", "Architectures", "Tracing"):
            assert key not in spec.properties, f"{spec.logical_id} overrides {key}"
        # Only a stream consumer (a batch of changes) or a scheduled run, the long-polling claim and the bulk
        # calls (redrive, purge: they stop with time to answer) may take longer than a
        # request; those behind the HTTP API stay under its 30 s integration timeout.
        events = (spec.properties.get("Events") or {}).values()
        stream_consumer = any(e.get("Type") in ("DynamoDB", "Schedule", "ScheduleV2") for e in events)
        long_poll = spec.handler in ("claim_job.handler", "claim_any.handler")
        bulk = spec.handler in ("redrive_queue.handler", "purge_queue.handler")
        assert "Timeout" not in spec.properties or stream_consumer or long_poll or bulk, f"{spec.logical_id} overrides Timeout"
        if any(e.get("Type") == "HttpApi" for e in events):
            assert spec.properties.get("Timeout", function_globals["Timeout"]) < 30, spec.logical_id
        if long_poll:
            assert spec.properties["Timeout"] * 1000 >= Limits().wait_ms_max + LONG_POLL_MARGIN_MS
            assert spec.properties["Timeout"] < 30


def test_the_project_lists_every_package_it_ships():
    """A package left out of pyproject.toml is missing from a non-editable install."""
    import tomllib

    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = set()
    for name, directory in config["package-dir"].items():
        for init in (PROJECT_ROOT / directory).rglob("__init__.py"):
            relative = init.parent.relative_to(PROJECT_ROOT / directory)
            on_disk.add(".".join([name, *relative.parts]))
    assert set(config["packages"]) == on_disk
