"""The results table (text and Markdown) and the targets checked against it."""

SECTION_ORDER = ["push_monolithic", "push_chunked", "pull_1", "pull_4", "pull_tls", "small_push", "manifest_put",
                 "read_manifest_tag", "read_manifest_digest", "read_blob_head", "token"]
SWEEP_PREFIXES = ["sweep_manifest", "sweep_blob1m"]
TAIL_ORDER = ["tags_full", "tags_walk", "catalog_walk", "catalog_walk_1000", "memory"]


def ordered_sections(results):
    secs = results["sections"]
    names = [n for n in SECTION_ORDER if n in secs]
    for prefix in SWEEP_PREFIXES:
        sweep = [n for n in secs if n.startswith(prefix + "_c")]
        names += sorted(sweep, key=lambda n: int(n.rsplit("_c", 1)[1]))
    names += [n for n in TAIL_ORDER if n in secs]
    names += [n for n in secs if n not in names]
    return names


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    if a >= 0.01:
        return "%.3f" % v
    if a == 0:
        return "0"
    return "%.2g" % v


def cell(s):
    if s is None or s.get("median") is None:
        return "-"
    if s["min"] == s["max"]:
        return fmt(s["median"])
    return "%s (%s–%s)" % (fmt(s["median"]), fmt(s["min"]), fmt(s["max"]))


def rows(results):
    regs = results["registries"]
    out = []
    for name in ordered_sections(results):
        sec = results["sections"][name]
        for metric, m in sec["metrics"].items():
            r = m.get("ratio")
            out.append((name, "%s [%s]" % (metric, m["unit"]) if m["unit"] != metric else metric,
                        cell(m.get(regs[0])), cell(m.get(regs[1])),
                        ("%.2f×" % r) if r is not None else "-", m["better"]))
    return out


def text_grid(head, body):
    """Rows (the first cell a test's name, said once) as aligned text."""
    widths = [max(len(str(r[i])) for r in [head] + body) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    prev = None
    for r in body:
        name = r[0] if r[0] != prev else ""
        prev = r[0]
        lines.append("  ".join(str(c).ljust(w) for c, w in zip((name,) + tuple(r[1:]), widths)).rstrip())
    return "\n".join(lines)


def markdown_grid(head, body):
    """The same rows as a Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    prev = None
    for r in body:
        name = "`%s`" % r[0] if r[0] != prev else ""
        prev = r[0]
        lines.append("| " + " | ".join((name,) + tuple(r[1:])) + " |")
    return "\n".join(lines)


def table_head(results):
    regs = results["registries"]
    return ("test", "metric", regs[0] + " median (min–max)", regs[1] + " median (min–max)", "ratio", "better")


def text_table(results):
    return text_grid(table_head(results), rows(results))


def markdown_table(results):
    return markdown_grid(table_head(results), rows(results))


def _median(results, section, metric, reg):
    try:
        return results["sections"][section]["metrics"][metric][reg]["median"]
    except (KeyError, TypeError):
        return None


def _ratio(results, section, metric):
    try:
        return results["sections"][section]["metrics"][metric]["ratio"]
    except (KeyError, TypeError):
        return None


def same_run_lines(results):
    """The ceilings measured inside the push and pull alternations."""
    out = []
    for name in ordered_sections(results):
        for key, v in results["sections"][name].get("notes", {}).items():
            if key.endswith("_same_run") and isinstance(v, dict) and v.get("median") is not None:
                out.append("%s: %s %s" % (name, key[:-len("_same_run")], cell(v)))
    return out


def targets(results):
    """Every target of the design and the performance issue, checked
    against this run. Each: what, the value, the goal, met (None: not
    measured)."""
    b = results["registries"][0]
    c = results.get("ceilings", {})
    out = []

    def add(what, value, goal, ok, unit=""):
        out.append({"target": what, "value": value, "goal": goal, "unit": unit,
                    "met": None if value is None or ok is None else bool(ok)})

    def ratio_at_least(section, metric, k, label):
        r = _ratio(results, section, metric)
        add(label, r, "≥ %g×" % k, None if r is None else r >= k, "×")

    def ratio_at_most(section, metric, k, label):
        r = _ratio(results, section, metric)
        add(label, r, "≤ %g×" % k, None if r is None else r <= k, "×")

    def ratio_below_one(section, metric, label):
        r = _ratio(results, section, metric)
        add(label, r, "< 1×", None if r is None else r < 1, "×")

    for sec, label in (("read_manifest_tag", "manifest GET by tag"),
                       ("read_manifest_digest", "manifest GET by digest"),
                       ("read_blob_head", "blob HEAD")):
        ratio_at_least(sec, "req/s", 10, "%s req/s vs distribution (issue ≥ 10×; design ≥ 5×)" % label)
        ratio_at_most(sec, "cpu_us_per_req", 0.1, "%s server CPU per request vs distribution" % label)
    for prefix, label in (("sweep_manifest", "manifest GET"), ("sweep_blob1m", "1 MiB blob GET")):
        steps = sorted((int(n.rsplit("_c", 1)[1]) for n in results["sections"] if n.startswith(prefix + "_c")))
        for s in steps:
            ratio_below_one("%s_c%d" % (prefix, s), "p99_ms",
                            "%s p99 lower than distribution at %d concurrent" % (label, s))
        if steps:
            vals = [_median(results, "%s_c%d" % (prefix, s), "req/s", b) for s in steps]
            if all(v is not None for v in vals):
                flat = vals[-1] / max(vals)
                add("%s throughput flat up to %d concurrent (berth at %d / its best step)"
                    % (label, steps[-1], steps[-1]), flat, "≥ 0.9", flat >= 0.9)
    for sec, label in (("pull_1", "pull, 1 stream"), ("pull_4", "pull, 4 streams")):
        ratio_at_least(sec, "MB/s", 1, "%s MB/s vs distribution" % label)
        ratio_below_one(sec, "cpu_s_per_GB", "%s server CPU per GB vs distribution" % label)
    def same_run(section, key):
        try:
            return results["sections"][section]["notes"][key]["median"]
        except (KeyError, TypeError):
            return None

    loops = [v for v in (c.get("loopback_pull_MB_s"), c.get("loopback_pull_sendfile_MB_s")) if v]
    for sec, label in (("pull_1", "pull, 1 stream"), ("pull_4", "pull, 4 streams")):
        # the loopback ceiling measured in the same alternation, else at the start
        loop = same_run(sec, "loopback_sendfile_MB_s_same_run") or (max(loops) if loops else None)
        v = _median(results, sec, "MB/s", b)
        frac = v / loop if v is not None and loop else None
        add("%s vs loopback ceiling (iperf3 -R -Z)" % label, frac, "≥ 0.9", None if frac is None else frac >= 0.9)
        # the like-for-like ceiling: the same file sent with sendfile(2), no HTTP, same client buffer
        filec = same_run(sec, "file_sendfile_MB_s_same_run")
        if filec:
            frac = v / filec if v is not None else None
            add("%s vs loopback sendfile of the same file, no HTTP" % label, frac, "≥ 0.9",
                None if frac is None else frac >= 0.9)
    sha = c.get("sha256_MB_s")
    for sec, label in (("push_monolithic", "push monolithic"), ("push_chunked", "push chunked")):
        ratio_at_least(sec, "MB/s", 1.5, "%s MB/s vs distribution" % label)
        disk = same_run(sec, "disk_fsync_MB_s_same_run") or c.get("disk_write_fsync_MB_s")
        v = _median(results, sec, "MB/s", b)
        frac = v / disk if v is not None and disk else None
        add("%s vs disk write with fsync (issue)" % label, frac, "≥ 0.8", None if frac is None else frac >= 0.8)
        frac = v / sha if v is not None and sha else None
        add("%s vs one core's SHA-256 (design)" % label, frac, "≥ 0.9", None if frac is None else frac >= 0.9)
    ratio_at_least("small_push", "ops/s", 5, "small blob push ops/s vs distribution")
    ratio_at_most("small_push", "p99_ms", 0.5, "small blob push p99 vs distribution")
    ratio_at_least("manifest_put", "ops/s", 5, "manifest PUT ops/s vs distribution")
    ratio_at_most("manifest_put", "p99_ms", 0.5, "manifest PUT p99 vs distribution")
    first = _median(results, "token", "first_p99_ms", b)
    cached = _median(results, "token", "cached_p99_ms", b)
    r = cached / first if first and cached is not None else None
    add("token endpoint answered from the credential cache (cached p99 / first request p99)", r, "≤ 0.1×",
        None if r is None else r <= 0.1, "×")
    for sec, label in (("tags_full", "tags list (one request)"), ("tags_walk", "tags list walk"),
                       ("catalog_walk", "catalog walk (pages of 100)")):
        notes = results["sections"].get(sec, {}).get("notes", {})
        other = notes.get(results["registries"][1], {})
        if sec.endswith("_walk") and other.get("pages") == 1 and other.get("entries", 0) > 100:
            # distribution ignored n: one response against berth's pages
            add("%s time vs distribution: not comparable, distribution does not paginate (%d entries in "
                "one response)" % (label, other["entries"]), _ratio(results, sec, "ms"), "≤ 0.2×", None, "×")
            out[-1]["met"] = None
            continue
        ratio_at_most(sec, "ms", 0.2, "%s time vs distribution (≥ 5× faster)" % label)
    for sec, label in (("tags_full", "tags list (one request)"), ("catalog_walk", "catalog walk (pages of 100)")):
        v = _median(results, sec, "ms", b)
        add("%s in a few ms (design)" % label, v, "≤ 5 ms", None if v is None else v <= 5, "ms")
    ratio_at_most("memory", "idle_rss_MiB", 0.25, "idle RSS vs distribution (issue ≤ 1/4; design ≤ 1/10)")
    # bench/floor.c: berth's libraries doing only what any registry on them must do at start
    floor = c.get("idle_rss_floor_MiB")
    idle = _median(results, "memory", "idle_rss_MiB", b)
    r = idle / floor if idle is not None and floor else None
    add("idle RSS vs the floor of the same libraries (berth / bench/floor.c)", r, "≤ 1.25×",
        None if r is None else r <= 1.25, "×")
    ratio_at_most("memory", "peak_hwm_MiB", 0.5, "peak RSS vs distribution")
    g = _median(results, "memory", "growth_MiB", b)
    rss = _median(results, "memory", "after_rss_MiB", b)
    add("RSS growth between two identical runs", g, "≤ max(1 MiB, 2% of RSS)",
        None if g is None or rss is None else g <= max(1.0, 0.02 * rss), "MiB")
    return out


def targets_text(tlist):
    lines = []
    for t in tlist:
        mark = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        v = "-" if t["value"] is None else ("%.3g" % t["value"])
        lines.append("%-7s %-88s %10s %s  (goal %s)" % (mark, t["target"], v, t["unit"], t["goal"]))
    return "\n".join(lines)


def targets_markdown(tlist):
    lines = ["| target | value | goal | |", "|---|---|---|---|"]
    for t in tlist:
        mark = {True: "met", False: "**missed**", None: "n/a"}[t["met"]]
        v = "-" if t["value"] is None else ("%.3g%s" % (t["value"], " " + t["unit"] if t["unit"] else ""))
        lines.append("| %s | %s | %s | %s |" % (t["target"], v, t["goal"], mark))
    return "\n".join(lines)
