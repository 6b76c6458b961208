"""Throughput against connections for every server of a load run.

    plot.py bench/results/load.json bench/results/throughput.png

The y axis is logarithmic: FastMCP and the Rust servers are more than an order of magnitude apart,
and on a linear axis FastMCP's line would sit on zero.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import FuncFormatter  # noqa: E402

# colour, marker, line style, and where the value labels go (points above or below the marker):
# toolgate with and without auth are close, so their labels go on opposite sides. A session-mode
# row has its stateless twin's colour and marker on a dotted line, with no labels of its own
# (they would sit on its twin's): its numbers are in the table.
STYLE = {
    "bare-axum": ("#7f7f7f", "s", "--", 7),
    "toolgate-noauth": ("#2ca02c", "^", "-", 7),
    "toolgate": ("#1f77b4", "o", "-", -14),
    "toolgate-proxy": ("#17becf", "D", "-", -26),
    "fastmcp": ("#d62728", "v", "-", 7),
    "toolgate-session": ("#1f77b4", "o", ":", None),
    "toolgate-proxy-session": ("#17becf", "D", ":", None),
    "fastmcp-session": ("#d62728", "v", ":", None),
}


def main(source: str, target: str) -> None:
    with open(source) as f:
        run = json.load(f)["run"]
    machine = run["machine"]
    fig, ax = plt.subplots(figsize=(9, 7), dpi=120)
    for subject in run["subjects"]:
        points = subject["points"]
        if not points:
            continue
        color, marker, line, label_offset = STYLE.get(subject["key"], ("black", "x", "-", 7))
        xs = [p["connections"] for p in points]
        ys = [p["rps"] for p in points]
        session = subject.get("mode") == "session"
        ax.plot(xs, ys, color=color, marker=marker, linestyle=line, linewidth=2, label=subject["label"],
                markerfacecolor="white" if session else color)
        if label_offset is None:
            continue
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=(0, label_offset),
                        ha="center", fontsize=8, color=color)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(run["connections"])
    ax.get_xaxis().set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.get_yaxis().set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("concurrent connections (wrk, 1 thread)")
    ax.set_ylabel("requests per second (log scale)")
    ax.set_title(
        f"authenticated MCP tools/call add(a, b); median of {run['rounds']} x {run['duration_s']} s per point\n"
        f"solid: stateless JSON; dotted: in an MCP session, SSE replies\n"
        f"{machine['cpus']} x {machine['cpu_model']}, {machine['date_utc']}",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    # Below the axes: eight rows leave no corner of the plot free.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=9)
    fig.tight_layout()
    fig.savefig(target)
    print(f"-- wrote {target}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
