"""The cluster run's table (one column per registry: berth and
distribution with one and two nodes) and the design's cluster targets."""

from report import cell, markdown_grid, text_grid

ORDER = ["push_monolithic", "push_chunked", "pull", "manifest_get", "manifest_put", "tags_list", "small_push", "memory"]
# each row's rate, the figure "one node on S3 >= 1.5x distribution" is about
RATES = {"push_monolithic": "MB/s", "push_chunked": "MB/s", "pull": "MB/s", "manifest_get": "req/s",
         "manifest_put": "ops/s", "tags_list": "req/s", "small_push": "ops/s"}
CPU = {"push_monolithic": "cpu_s_per_GB", "push_chunked": "cpu_s_per_GB", "pull": "cpu_s_per_GB",
       "manifest_get": "cpu_us_per_req", "manifest_put": "cpu_ms_per_op", "tags_list": "cpu_us_per_req",
       "small_push": "cpu_ms_per_op"}
WRITES = ("push_monolithic", "push_chunked", "manifest_put", "small_push")


def x(r):
    return "-" if r is None else "%.2f×" % r


def rows(results):
    regs = results["registries"]
    secs = results["sections"]
    names = [n for n in ORDER if n in secs] + [n for n in secs if n not in ORDER]
    out = []
    for name in names:
        for metric, m in secs[name]["metrics"].items():
            two = m.get("ratio_2v1", {})
            out.append((name, "%s [%s]" % (metric, m["unit"]) if m["unit"] != metric else metric)
                       + tuple(cell(m.get(r)) for r in regs)
                       + (x(m.get("ratio")), x(two.get("berth")), x(two.get("distribution")), m["better"]))
    return out


def head(results):
    return (("test", "metric") + tuple("%s median (min–max)" % r for r in results["registries"])
            + ("berth-1 / distribution-1", "berth 2 nodes / 1", "distribution 2 nodes / 1", "better"))


def text_table(results):
    return text_grid(head(results), rows(results))


def markdown_table(results):
    return markdown_grid(head(results), rows(results))


def _metric(results, section, metric):
    try:
        return results["sections"][section]["metrics"][metric]
    except (KeyError, TypeError):
        return None


def targets(results):
    """The design's cluster targets, checked against this run (met None:
    not measured, e.g. berth did not start)."""
    out = []

    def add(what, value, goal, ok, unit="×"):
        out.append({"target": what, "value": value, "goal": goal, "unit": unit,
                    "met": None if value is None or ok is None else bool(ok)})

    for sec, metric in RATES.items():
        m = _metric(results, sec, metric)
        r = m and m.get("ratio")
        add("%s %s: berth 1 node vs distribution 1 node, same S3" % (sec, metric), r, "≥ 1.5×",
            None if r is None else r >= 1.5)
    pull = _metric(results, "pull", "MB/s")
    ceiling = results.get("sections", {}).get("pull", {}).get("notes", {}).get("s3_get_MB_s_same_run", {})
    c = ceiling.get("median") if isinstance(ceiling, dict) else None
    for reg in ("berth-1", "berth-2"):
        v = pull and pull.get(reg, {}).get("median")
        frac = v / c if v is not None and c else None
        add("pull through %s vs a direct S3 GET of the same object" % reg, frac, "≥ 0.9",
            None if frac is None else frac >= 0.9, "")
    for sec, metric in CPU.items():
        m = _metric(results, sec, metric)
        r = m and m.get("ratio_2v1", {}).get("berth")
        add("%s server CPU per operation, berth 2 nodes (summed) vs 1 node" % sec, r, "≤ 1.1×",
            None if r is None else r <= 1.1)
    m = _metric(results, "manifest_get", "pg_stmt_per_op")
    for reg in ("berth-1", "berth-2"):
        v = m and m.get(reg, {}).get("median")
        add("manifest GET (cached): PostgreSQL statements per request, %s" % reg, v, "= 0",
            None if v is None else v == 0, "")
    for sec in WRITES:
        m = _metric(results, sec, "pg_notify_per_op")
        v = m and m.get("berth-1", {}).get("median")
        add("%s: NOTIFYs per write, berth-1 (one notification per write)" % sec, v, "≤ 1",
            None if v is None else v <= 1, "")
    return out
