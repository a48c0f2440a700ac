"""Checks the Prometheus rules, scrape config and Grafana dashboard in tools/.

Needs promtool (Debian package prometheus) and PyYAML (python3-yaml); no
sonde, no root. Every PromQL expression is parsed by promtool itself: the
dashboard's queries, with Grafana's variables filled in, are written out as
recording rules and given to `promtool check rules`.
"""
import copy
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROMETHEUS = os.path.join(ROOT, "tools", "prometheus")
RULES = os.path.join(PROMETHEUS, "rules.yml")
RULES_TEST = os.path.join(PROMETHEUS, "rules_test.yml")
SCRAPE = os.path.join(PROMETHEUS, "scrape.yml")
DASHBOARD = os.path.join(ROOT, "tools", "grafana", "sonde-dashboard.json")

HISTOGRAM = "http_server_request_duration_seconds"


def promtool(*args, cwd=None):
    exe = shutil.which("promtool")
    assert exe, "promtool not found: install the Debian package prometheus (make deps)"
    return subprocess.run([exe, *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def assert_ok(result):
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}:\n"
        f"{result.stdout}\n{result.stderr}")


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


# ---------------------------------------------------------------------------
# rules.yml

def rule_groups():
    return {g["name"]: g for g in load_yaml(RULES)["groups"]}


def alerts():
    return {r["alert"]: r for g in load_yaml(RULES)["groups"]
            for r in g["rules"] if "alert" in r}


# Strict "greater than" comparisons (the thresholds), and ">=" (the guards).
THRESHOLD = re.compile(r"(?<![<>=!])>(?!=)\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)")
GUARD = re.compile(r">=\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)")
QUANTILE = re.compile(r"histogram_quantile\(\s*([0-9.]+)")


def thresholds(expr):
    return [float(v) for v in THRESHOLD.findall(expr)]


def test_promtool_check_rules():
    result = promtool("check", "rules", RULES)
    assert_ok(result)
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_rule_unit_tests():
    assert_ok(promtool("test", "rules", RULES_TEST))


def test_rule_groups_and_recording_names():
    groups = rule_groups()
    assert set(groups) == {"sonde-recording", "sonde-alerts"}
    recording = groups["sonde-recording"]
    assert recording["interval"] == "30s"
    assert all("record" in r for r in recording["rules"])
    assert all("alert" in r for r in groups["sonde-alerts"]["rules"])
    names = [r["record"] for r in recording["rules"]]
    assert len(names) == len(set(names)), names
    for name in names:  # level:metric:operations
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", name), name
    for name in ["service_route:http_server_requests:rate5m",
                 "service:http_server_requests:rate5m",
                 "service:http_server_errors:rate5m",
                 "service:http_server_error_ratio:rate5m",
                 "service_route:http_server_duration_seconds:p50_5m",
                 "service_route:http_server_duration_seconds:p95_5m",
                 "service_route:http_server_duration_seconds:p99_5m"]:
        assert name in names, name
    by_name = {r["record"]: r["expr"] for r in recording["rules"]}
    for q in ("50", "95", "99"):
        expr = by_name[f"service_route:http_server_duration_seconds:p{q}_5m"]
        assert [float(v) for v in QUANTILE.findall(expr)] == [int(q) / 100]
        assert re.search(r"sum by \(service_name, http_route, le\)", expr), expr
        assert f"rate({HISTOGRAM}_bucket[5m])" in expr, expr


def test_every_alert_has_severity_summary_description():
    found = alerts()
    for name in ["HighErrorRate", "HighGRPCErrorRate", "HighLatency",
                 "TCPConnectFailures",
                 "SondeEventsDropped", "SondeEventsMissed",
                 "SondeMapNearlyFull", "SondeProgramDetached", "SondeDown"]:
        assert name in found, f"alert {name} missing from rules.yml"
    for name, rule in found.items():
        assert rule.get("labels", {}).get("severity") in ("critical", "warning"), name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description"):
            assert isinstance(annotations.get(key), str) and annotations[key].strip(), \
                f"{name} has no {key}"
        if "service_name" in rule["expr"] and "by (service_name)" in rule["expr"]:
            assert "$labels.service_name" in annotations["summary"], name


def test_alert_thresholds_from_the_issue():
    found = alerts()

    error = found["HighErrorRate"]
    assert error["for"] == "5m"
    assert thresholds(error["expr"]) == [0.01], error["expr"]
    assert 'http_response_status_code=~"5.."' in error["expr"]
    assert "by (service_name)" in error["expr"]
    assert "humanizePercentage" in error["annotations"]["description"]

    latency = found["HighLatency"]
    assert latency["for"] == "5m"
    assert thresholds(latency["expr"]) == [0.5], latency["expr"]
    assert [float(v) for v in QUANTILE.findall(latency["expr"])] == [0.95]
    assert "by (service_name, le)" in latency["expr"]
    assert "humanizeDuration" in latency["annotations"]["description"]

    # Both are guarded by a minimum request rate (requests/s, over 5m).
    for rule in (error, latency):
        guards = [float(v) for v in GUARD.findall(rule["expr"])]
        assert guards and all(g > 0 for g in guards), rule["expr"]

    tcp = found["TCPConnectFailures"]
    assert tcp["for"] == "5m"
    assert thresholds(tcp["expr"]) == [0.05], tcp["expr"]
    assert 'result!="ok"' in tcp["expr"]

    assert "increase(sonde_events_dropped_total[10m])" in \
        found["SondeEventsDropped"]["expr"]
    assert "increase(sonde_program_recursion_misses_total[10m])" in \
        found["SondeEventsMissed"]["expr"]
    full = found["SondeMapNearlyFull"]
    assert full["for"] == "10m"
    assert thresholds(full["expr"]) == [0.9], full["expr"]
    assert found["SondeProgramDetached"]["for"] == "5m"
    down = found["SondeDown"]
    assert down["for"] == "5m"
    assert 'up{job="sonde"} == 0' in down["expr"]
    assert 'absent(up{job="sonde"})' in down["expr"]


def _scale(pattern, factor):
    def mutate(expr):
        new, n = pattern.subn(
            lambda m: m.group(0).replace(m.group(1), repr(float(m.group(1)) * factor)),
            expr)
        assert n == 1, expr
        return new
    return mutate


MUTATIONS = [
    (alert, what, change)
    for alert in ("HighErrorRate", "HighLatency", "TCPConnectFailures")
    for what, change in [("threshold x1.06", _scale(THRESHOLD, 1.06)),
                         ("threshold x0.94", _scale(THRESHOLD, 0.94)),
                         ("for 4m", "4m"), ("for 6m", "6m"),
                         ("guard x0.4", _scale(GUARD, 0.4))]
] + [("HighErrorRate", "guard x1.3", _scale(GUARD, 1.3)),
     ("SondeMapNearlyFull", "threshold x1.06", _scale(THRESHOLD, 1.06)),
     ("SondeMapNearlyFull", "threshold x0.94", _scale(THRESHOLD, 0.94)),
     ("SondeMapNearlyFull", "for 9m", "9m"),
     ("SondeMapNearlyFull", "for 11m", "11m"),
     ("SondeMapNearlyFull", "every map",
      lambda e: e.replace('{map=~"conns|socks|tls_fds"}', "", 1)),
     ("SondeProgramDetached", "for 4m", "4m"),
     ("SondeDown", "for 6m", "6m")]


@pytest.mark.parametrize("alert,what,change", MUTATIONS,
                         ids=[f"{a}-{w}".replace(" ", "-") for a, w, _ in MUTATIONS])
def test_rule_unit_tests_catch_a_changed_rule(tmp_path, alert, what, change):
    """rules_test.yml pins each threshold and `for` from both sides: the
    unit tests must fail against a copy of rules.yml with one of them
    moved a little."""
    doc = load_yaml(RULES)
    mutated = copy.deepcopy(doc)
    rule = next(r for g in mutated["groups"] for r in g["rules"]
                if r.get("alert") == alert)
    if what.startswith("for"):
        rule["for"] = change
    else:
        rule["expr"] = change(rule["expr"])
    assert mutated != doc
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(mutated, sort_keys=False))
    shutil.copy(RULES_TEST, tmp_path / "rules_test.yml")
    result = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert result.returncode != 0, \
        f"rules_test.yml still passes with {alert} {what}:\n{result.stdout}"
    assert "FAILED" in result.stdout + result.stderr


# ---------------------------------------------------------------------------
# sonde-dashboard.json

def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(panels):
    """Every panel, through rows (collapsed rows nest theirs)."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def exprs(dash):
    return [(panel["title"], target["expr"])
            for panel in all_panels(dash["panels"])
            for target in panel.get("targets", [])
            if target.get("expr")]


BUILTIN = {  # Grafana's built-in variables, as promtool should see them.
    "__rate_interval": "5m", "__interval": "5m", "__range": "5m",
    "__interval_ms": "300000", "__range_ms": "300000", "__range_s": "300",
}


def substitute(expr, variables):
    """Fills in Grafana variables: $name, ${name}, ${name:format}, [[name]].
    Template variables become the regex ".*", durations 5m. An unknown
    variable fails the test rather than parse by accident."""
    def value(match):
        name = match.group(1) or match.group(2) or match.group(3)
        if name in BUILTIN:
            return BUILTIN[name]
        assert name in variables, f"undefined variable ${name} in: {expr}"
        return ".*"
    return re.sub(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]",
                  value, expr)


def template_variables(dash):
    return {v["name"]: v for v in dash["templating"]["list"]}


def variable_query(var):
    query = var.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query or var.get("definition")


def test_dashboard_variables():
    dash = dashboard()
    assert dash["schemaVersion"] >= 36
    variables = template_variables(dash)

    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"

    service = variables["service"]
    assert service["type"] == "query"
    assert variable_query(service) == \
        f"label_values({HISTOGRAM}_count, service_name)"
    assert service["multi"] is True and service["includeAll"] is True

    route = variables["route"]
    assert route["type"] == "query"
    assert re.fullmatch(
        rf'label_values\({HISTOGRAM}_count\{{service_name=~"\$service"\}}, http_route\)',
        variable_query(route)), variable_query(route)
    assert route["multi"] is True and route["includeAll"] is True

    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"]["uid"] in ("${datasource}", "$datasource")


REQUIRED_PANELS = {
    "Request rate by service and route": "timeseries",
    "Error ratio (5xx) by service": "timeseries",
    "Latency p50 by service and route": "timeseries",
    "Latency p95 by service and route": "timeseries",
    "Latency p99 by service and route": "timeseries",
    "Latency heatmap": "heatmap",
    "Top routes by p99": "table",
    "Client request rate by service and server": "timeseries",
    "Client error ratio (4xx/5xx) by service and server": "timeseries",
    "Client latency p95 by service and server": "timeseries",
    "gRPC calls served": "row",
    "gRPC call rate by service, method and status": "timeseries",
    "gRPC server error ratio by service": "timeseries",
    "gRPC latency p95 by service and method": "timeseries",
    "TCP connect failures by service and result": "timeseries",
    "TCP connect failure ratio by service": "timeseries",
    "Agent health": "row",
    "Events received rate": "timeseries",
    "Events dropped by reason": "timeseries",
    "Live series": "timeseries",
    "Programs attached": "table",
    "Programs skipped by the kernel": "timeseries",
    "BPF map fill": "timeseries",
}


def test_dashboard_panels():
    dash = dashboard()
    panels = {p["title"]: p for p in all_panels(dash["panels"])}
    for title, kind in REQUIRED_PANELS.items():
        assert title in panels, f"no panel titled {title!r}"
        assert panels[title]["type"] == kind, title
    ids = [p["id"] for p in all_panels(dash["panels"])]
    assert len(ids) == len(set(ids)), "panel ids repeat"

    for title, panel in panels.items():
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{title} has no query"
        assert panel["datasource"]["uid"] in ("${datasource}", "$datasource"), title

    heatmap = panels["Latency heatmap"]["targets"][0]
    assert heatmap["format"] == "heatmap"
    assert re.search(rf"sum by \(le\) \(rate\({HISTOGRAM}_bucket\{{", heatmap["expr"])

    top = panels["Top routes by p99"]["targets"][0]
    assert top["expr"].startswith("topk(") and "histogram_quantile(0.99" in top["expr"]

    def first_expr(title):
        return panels[title]["targets"][0]["expr"]

    for q, title in [("0.50", "Latency p50 by service and route"),
                     ("0.95", "Latency p95 by service and route"),
                     ("0.99", "Latency p99 by service and route")]:
        assert f"histogram_quantile({q}, sum by (service_name, http_route, le)" in \
            first_expr(title)
    assert "http_client_request_duration_seconds" in \
        first_expr("Client request rate by service and server")
    assert "sonde_tcp_connects_total" in \
        first_expr("TCP connect failures by service and result")
    assert "sum by (service_name, rpc_method, rpc_response_status_code)" in \
        first_expr("gRPC call rate by service, method and status")
    assert 'rpc_response_status_code=~"UNKNOWN|DEADLINE_EXCEEDED|' in \
        first_expr("gRPC server error ratio by service")
    assert "sum by (service_name, rpc_method, le)" in \
        first_expr("gRPC latency p95 by service and method")
    assert "sonde_events_received_total" in first_expr("Events received rate")
    assert "sonde_program_recursion_misses_total" in \
        first_expr("Programs skipped by the kernel")
    assert "sonde_map_entries" in first_expr("BPF map fill")
    assert "sonde_events_dropped_total" in first_expr("Events dropped by reason")
    assert "by (instance, reason)" in first_expr("Events dropped by reason")
    assert "sonde_series" in first_expr("Live series")
    assert "sonde_program_attached" in first_expr("Programs attached")


def test_dashboard_queries_use_the_variables():
    for title, expr in exprs(dashboard()):
        # No hard-coded range: [$__rate_interval] for rates, [$__range] for
        # the range-wide table.
        no_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
        for window in re.findall(r"\[([^\]]*)\]", no_strings):
            assert window in ("$__rate_interval", "$__range"), (title, expr)
        for selector in re.findall(r"\b(http_server_request_duration_seconds\w*)\{([^}]*)\}", expr):
            assert 'service_name=~"$service"' in selector[1], (title, expr)
            assert 'http_route=~"$route"' in selector[1], (title, expr)
        for selector in re.findall(
                r"\b(http_client_request_duration_seconds\w*|sonde_tcp_connect\w*|"
                r"rpc_server_call_duration_seconds\w*|"
                r"sonde_route_overflows_total)\{([^}]*)\}", expr):
            assert 'service_name=~"$service"' in selector[1], (title, expr)


def test_dashboard_promql_parses(tmp_path):
    dash = dashboard()
    variables = template_variables(dash)
    queries = exprs(dash)
    assert len(queries) >= 20
    # Variable queries: label_values(selector, label) -> the selector.
    for name, var in variables.items():
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable_query(var))
            assert m, variable_query(var)
            queries.append((f"variable {name}", f"count({m.group(1)})"))

    rules = [{"record": f"dashboard:query:n{i}", "expr": substitute(expr, variables)}
             for i, (_, expr) in enumerate(queries)]
    for rule in rules:
        assert "$" not in rule["expr"], rule["expr"]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    index = "\n".join(f"  n{i}: {title}: {rule['expr']}"
                      for i, ((title, _), rule) in enumerate(zip(queries, rules)))
    assert result.returncode == 0, \
        f"promtool rejects a dashboard query:\n{result.stdout}{result.stderr}\n{index}"
    assert f"{len(rules)} rules found" in result.stdout, result.stdout


def test_substitute_fills_every_form():
    variables = {"service": {}, "route": {}}
    assert substitute('rate(m{a=~"$service",b=~"${route}",c=~"${service:regex}",'
                      'd=~"[[route]]"}[$__rate_interval])', variables) == \
        'rate(m{a=~".*",b=~".*",c=~".*",d=~".*"}[5m])'
    assert substitute("x[${__range}] offset $__interval", variables) == "x[5m] offset 5m"
    with pytest.raises(AssertionError):
        substitute('m{a=~"$servce"}', variables)


# ---------------------------------------------------------------------------
# scrape.yml

def test_scrape_config():
    config = load_yaml(SCRAPE)
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    sonde = jobs["sonde"]  # SondeDown watches up{job="sonde"}
    assert sonde.get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
    targets = [t for sc in sonde["static_configs"] for t in sc["targets"]]
    assert targets and all(t.endswith(":9464") for t in targets), targets
    rule_files = [os.path.normpath(os.path.join(PROMETHEUS, f))
                  for f in config["rule_files"]]
    assert rule_files == [RULES]

    # Relative rule_files resolve from the config's directory, wherever
    # promtool runs.
    result = promtool("check", "config", SCRAPE, cwd="/")
    assert_ok(result)
    assert "rules.yml" in result.stdout + result.stderr


def commented_jobs():
    """The commented-out Kubernetes jobs in scrape.yml, uncommented."""
    jobs, current = [], None
    with open(SCRAPE) as f:
        for line in f:
            m = re.match(r"  # (- job_name:.*|  .*)$", line.rstrip("\n"))
            if m and m.group(1).startswith("- job_name:"):
                current = [m.group(1)]
                jobs.append(current)
            elif m and current is not None:
                current.append(m.group(1))
            else:
                current = None
    return ["\n".join(job) + "\n" for job in jobs]


def test_scrape_config_kubernetes_examples(tmp_path):
    """Debian's promtool is built without Kubernetes discovery, so the
    kubernetes_sd_configs block is checked here and the rest of each job
    (relabelling) by promtool, with a static target in its place."""
    jobs = commented_jobs()
    roles = []
    for i, job in enumerate(jobs):
        scrape = yaml.safe_load(job)[0]
        assert scrape["job_name"] == "sonde"
        assert scrape["scrape_interval"] == "15s"
        sd = scrape.pop("kubernetes_sd_configs")
        assert len(sd) == 1 and set(sd[0]) == {"role"}, sd
        roles.append(sd[0]["role"])
        assert "9464" in job
        scrape["static_configs"] = [{"targets": ["node-1:9464"]}]
        config = {"global": {"scrape_interval": "15s"},
                  "rule_files": [RULES],  # absolute: the copy lives elsewhere
                  "scrape_configs": [scrape]}
        path = tmp_path / f"scrape_k8s_{i}.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        assert_ok(promtool("check", "config", str(path)))
    assert sorted(roles) == ["node", "pod"]
