#!/usr/bin/env python3
"""Writes docs/bench/REPORT.md and docs/bench/ratios.svg from the JSON lines the benchmarks
append to $BENCH_JSON (see scripts/bench). Figures are copied as measured, never edited."""
import datetime
import json
import os
import platform
import subprocess
import sys


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
            mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "cpu": cpu or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "memory": mem or "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "rustc": sh("rustc", "--version"),
        "commit": sh("git", "rev-parse", "--short", "HEAD"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt_rate(v):
    return "" if v is None else f"{v:,.0f}"


def fmt_us(v):
    return "" if v is None else f"{v:,.1f}"


def fmt_rounds(ratios):
    """Per-round ratios as `median (lowest–highest)`, or empty for rows measured once."""
    if not ratios:
        return ""
    v = sorted(ratios)
    mid = len(v) // 2
    median = v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2
    return f"{median:.2f} ({v[0]:.2f}–{v[-1]:.2f})"


def label(r):
    return f"{r['binder']} ({r['broker']}) {r['case']}" + (f", {r['payload_bytes']} B" if r.get("payload_bytes") else "")


def svg(rows, path):
    bars = [(label(r), r["bindery"] / r["raw"]) for r in rows if r.get("raw") and r.get("bindery")]
    width, left, bar_h, gap = 900, 430, 18, 8
    height = 50 + len(bars) * (bar_h + gap) + 30
    scale = (width - left - 60) / 1.2
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="22" font-size="15" font-weight="bold">bindery throughput as a fraction of the raw client (same run)</text>',
    ]
    for x in (0.5, 0.9, 1.0):
        gx = left + x * scale
        out.append(f'<line x1="{gx:.1f}" y1="35" x2="{gx:.1f}" y2="{height - 25}" stroke="#bbb" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{gx:.1f}" y="{height - 10}" text-anchor="middle" fill="#555">{x:.2f}x</text>')
    for i, (name, ratio) in enumerate(bars):
        y = 40 + i * (bar_h + gap)
        w = max(1.0, min(ratio, 1.2) * scale)
        color = "#2e7d32" if ratio >= 0.9 else ("#f9a825" if ratio >= 0.5 else "#c62828")
        name = name.replace("&", "&amp;").replace("<", "&lt;")
        out.append(f'<text x="{left - 8}" y="{y + bar_h - 5}" text-anchor="end">{name}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        out.append(f'<text x="{left + w + 5:.1f}" y="{y + bar_h - 5}">{ratio:.2f}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    results, outdir = sys.argv[1], sys.argv[2]
    rows = []
    with open(results) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    m = machine()
    main_rows = [r for r in rows if r.get("case") != "scaling"]
    scaling = [r for r in rows if r.get("case") == "scaling"]
    lines = [
        "# bindery benchmark report",
        "",
        "Written by `scripts/bench` from the figures the benchmarks measured in one run; never edited by hand.",
        "Each row runs the raw client and bindery in the same process, on the same broker and topic shape.",
        "The rates are each side's best round; *rounds* gives every round's own ratio (raw and bindery",
        "run back to back) as median (lowest–highest): how far the machine moved while the row was measured.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}; {m['rustc']}; commit {m['commit']}; {m['date']}.",
        "",
        "![ratios](ratios.svg)",
        "",
        "| binder | broker | case | payload | messages | raw msg/s | bindery msg/s | ratio | rounds | raw p50/p99 µs | bindery p50/p99 µs | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in main_rows:
        ratio = f"{r['bindery'] / r['raw']:.2f}" if r.get("raw") and r.get("bindery") else ""
        raw_lat = f"{fmt_us(r.get('raw_p50_us'))} / {fmt_us(r.get('raw_p99_us'))}" if r.get("raw_p50_us") is not None else ""
        b_lat = (
            f"{fmt_us(r.get('bindery_p50_us'))} / {fmt_us(r.get('bindery_p99_us'))}"
            if r.get("bindery_p50_us") is not None
            else ""
        )
        rss = f"{r['peak_rss_kib'] / 1024:.0f} MiB" if r.get("peak_rss_kib") else ""
        payload = f"{r['payload_bytes']} B" if r.get("payload_bytes") else ""
        lines.append(
            f"| {r['binder']} | {r['broker']} | {r['case']} | {payload} | {r.get('messages', '')} | {fmt_rate(r.get('raw'))} | {fmt_rate(r.get('bindery'))} | {ratio} | {fmt_rounds(r.get('round_ratios'))} | {raw_lat} | {b_lat} | {rss} |"
        )
    per_round = [r for r in main_rows if r.get("bindery_rounds")]
    if per_round:
        lines += ["", "Bindery's own rate in each round, in round order (for targets stated in msg/s):", ""]
        for r in per_round:
            rates = sorted(r["bindery_rounds"])
            shown = ", ".join(fmt_rate(b) for b in r["bindery_rounds"])
            lines.append(f"- {r['binder']}, {r['case']}: {shown} (median {fmt_rate(rates[len(rates) // 2])})")
    if scaling:
        lines += ["", "## Scaling", "", "| binder | broker | bindings | partitions | bindery msg/s |", "|---|---|---|---|---|"]
        for r in scaling:
            lines.append(
                f"| {r['binder']} | {r['broker']} | {r.get('bindings', '')} | {r.get('partitions', '')} | {fmt_rate(r.get('bindery'))} |"
            )
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "REPORT.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    svg(main_rows, os.path.join(outdir, "ratios.svg"))
    print(f"wrote {outdir}/REPORT.md and {outdir}/ratios.svg from {len(rows)} results")


if __name__ == "__main__":
    main()
