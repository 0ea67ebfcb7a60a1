"""Markdown report and figures of the speed suite (numbers only from results.json)."""

from __future__ import annotations

from pathlib import Path

from .report import machine_line, run_lines

TARGETS = {"latency_p99_ms": 50.0, "throughput_ratio": 0.9, "volume_s": 10.0, "click_to_segmentation_s": 120.0, "dice": 0.7}


def write_speed_report(results: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in results["methods"] if m in results["training"]]
    tr, inf = results["training"], results["inference"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.bar(methods, [tr[m]["pairs_per_s"] for m in methods], color="#55a868")
    ax1.set_ylabel("training slice pairs / s")
    ax1.set_title(f"training throughput ({results['machine']['device']})")
    ax2.bar(methods, [inf[m]["volume_s"] for m in methods], color="#4c72b0")
    ax2.axhline(TARGETS["volume_s"], color="k", ls="--", lw=1, label="target")
    ax2.set_ylabel("seconds")
    ax2.set_title("inference, " + "x".join(map(str, inf[methods[0]]["volume_shape"])) + " volume")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out / "speed-methods.png", dpi=110)
    plt.close(fig)

    lines = [
        f"## Speed ({results['profile']} profile)",
        "",
        machine_line(results),
        "",
        f"Data: {results['study']}. Each training figure is a real `weakseg train` process of {results['steps']} "
        "steps; throughput is read from its `metrics.jsonl` (the first 5 steps left out).",
        "",
    ]
    lines += run_lines(results)
    lines += [
        "| method | slice pairs/s | GFLOP/step | achieved / matmul FLOP/s | peak memory (MB) | volume inference (s) | one slice (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        t, i = tr[m], inf[m]
        mem = t.get("peak_memory_mb") or float("nan")
        lines.append(
            f"| {m} | {t['pairs_per_s']:.1f} | {t['step_flops'] / 1e9:.2f} | "
            f"{t['achieved_flops_per_s'] / results['matmul_flops_per_s']:.1%} | {mem:.0f} | {i['volume_s']:.2f} | "
            f"{1000 * i['slice_s']:.0f} |"
        )
    lines += [
        "",
        "Peak memory: CUDA peak allocation on a GPU; on a CPU the training process's peak resident set "
        "(Python, torch and the data included).",
        "",
        "![Throughput and inference time](speed-methods.png)",
        "",
    ]
    lines += ab_section(results)
    lines += _gui_section(results.get("gui", {}), out, plt)
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


AB_TARGETS = {"speedup": 2.0, "flops_share": 0.40}  # genseg quick, issue #15


def ab_section(results: dict) -> list[str]:
    """The A/B table: each method's eager fp32 step against bf16 autocast and compiled steps, one run each
    (interleaved), and the genseg targets."""
    ab = results.get("ab")
    if not ab:
        return []
    matmul = results["matmul_flops_per_s"]
    lines = [
        "### Eager fp32 against bf16 and compiled steps (A/B)",
        "",
        f"Each cell is a `weakseg train` process of {ab['steps']} steps on the same study, the variants run one after "
        f"another for each method ({ab['repeats']} round(s); the fastest kept). bf16 units on this device: "
        f"{'yes' if ab['bf16_units'] else 'no (bf16 variants left out)'}. *first step*: from the loop's start to its "
        "first step; a compiled variant's compile time is its first step minus eager fp32's.",
        "",
        "| method | variant | slice pairs/s | x eager fp32 | achieved / matmul FLOP/s | first step (s) | used |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for method, runs in ab["methods"].items():
        base = runs.get("eager fp32")
        for name in ab["variants"]:
            run = runs.get(name)
            if run is None:
                continue
            if "timed_out_s" in run:  # measured too: the compiler had not finished when the time box ended
                lines.append(f"| {method} | {name} | — | — | — | > {run['timed_out_s']:.0f} (stopped) | compiling |")
                continue
            rt = run.get("runtime", {})
            used = f"{rt.get('precision', '?')}, {'compiled' if rt.get('compile') else 'eager'}, {rt.get('threads', '?')} thr"
            if rt.get("note"):
                used += f" ({rt['note']})"
            ratio = run["pairs_per_s"] / base["pairs_per_s"] if base else float("nan")
            lines.append(
                f"| {method} | {name} | {run['pairs_per_s']:.1f} | {ratio:.2f} | {run['achieved_flops_per_s'] / matmul:.1%} | "
                f"{run['first_step_s']:.1f} | {used} |"
            )
    g = {k: v for k, v in ab["methods"].get("genseg", {}).items() if "timed_out_s" not in v}
    if "eager fp32" in g:
        best_name = max(g, key=lambda k: g[k]["pairs_per_s"])
        best = g[best_name]
        speedup = best["pairs_per_s"] / g["eager fp32"]["pairs_per_s"]
        share = best["achieved_flops_per_s"] / matmul
        lines += [
            "",
            f"genseg (quick): the fastest variant, {best_name}, runs **{speedup:.2f}x** eager fp32 "
            f"(target >= {AB_TARGETS['speedup']:g}x: {'met' if speedup >= AB_TARGETS['speedup'] else 'missed'}) at "
            f"**{share:.1%}** of the matmul FLOP/s (target >= {AB_TARGETS['flops_share']:.0%}: "
            f"{'met' if share >= AB_TARGETS['flops_share'] else 'missed'}).",
        ]
    return [*lines, "", *dice_section(results.get("ab_dice"))]


def dice_section(ab_dice: dict | None) -> list[str]:
    """Whether the faster variants cost Dice: the phantom's truth against each variant's segmentation, per seed."""
    if not ab_dice:
        return []
    rows = ab_dice["variants"]
    lines = [
        f"Dice on the demo phantom (its truth, every slice) after {ab_dice['steps']} steps of {ab_dice['method']} "
        f"(the dock's default), seeds {', '.join(map(str, ab_dice['seeds']))}, the variants interleaved:",
        "",
        "| variant | Dice per seed | mean (sd) |",
        "|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {', '.join(f'{d:.3f}' for d in row['dice'])} | {row['mean']:.3f} ({row['sd']:.3f}) |")
    return [*lines, ""]


def _gui_section(gui: dict, out: Path, plt) -> list[str]:
    lines = ["### The viewer while it trains", ""]
    if "skipped" in gui or not gui:
        return lines + [f"Not measured: {gui.get('skipped', 'no GUI results')}.", ""]
    cfg = gui["runs"][0]["config"]
    lat = gui["latency"]
    lines += [
        f"The demo phantom study in a real napari viewer (Xvfb on a server) with both docks; **Train** clicked with "
        f"the dock's defaults (`{cfg['method']}`, preset `{cfg['preset']}`, {cfg['steps']} steps). Event-loop latency: "
        "a 10 ms Qt timer records how late it fires. During the run a simulated user (stepping through slices and "
        "zooming twice a second) is on for 4 s and off for 4 s in turn; samples are kept apart by condition, and "
        "the same user is measured on the idle viewer before the run. Each GUI run is followed by the same "
        f"configuration as a `weakseg train` process; {len(gui['runs'])} interleaved pair(s), medians.",
        "",
        "| measure | result | target | met |",
        "|---|---|---|---|",
    ]
    rows = [("event-loop latency p99 while training (ms)", lat["training"]["p99_ms"], TARGETS["latency_p99_ms"], "<")]
    for label in ("training", "training, user", "idle", "idle, user", "showing results"):
        if label in lat:
            rows.append((f"latency p50 / p99 / max, {label} (ms)", lat[label], None, None))
    cond = gui.get("gui_pairs_per_s_by_condition", {})
    rows.append(("throughput in the GUI / headless, whole run", gui["throughput_ratio"], TARGETS["throughput_ratio"], ">="))
    for label, what in (("training", "nobody interacting"), ("training, user", "simulated user working")):
        if label in cond:
            rows.append(
                (f"throughput in the GUI / headless, {what}", cond[label] / gui["headless_pairs_per_s"], TARGETS["throughput_ratio"], ">=")
            )
    rows += [
        ("click on Train to segmentation on screen (s)", gui["click_to_segmentation_s"], TARGETS["click_to_segmentation_s"], "<"),
        ("Dice of that segmentation against the phantom's truth", gui["dice"], TARGETS["dice"], ">="),
    ]
    for name, value, target, op in rows:
        shown = f"{value['p50_ms']:.0f} / {value['p99_ms']:.0f} / {value['max_ms']:.0f}" if isinstance(value, dict) else f"{value:.3g}"
        met = "" if target is None else ("yes" if (value < target if op == "<" else value >= target) else "**no**")
        lines.append(f"| {name} | {shown} | {'' if target is None else f'{op} {target:g}'} | {met} |")
    lines += [
        "",
        f"Slice pairs/s: GUI {gui['gui_pairs_per_s']:.2f} over the whole run vs headless {gui['headless_pairs_per_s']:.2f}"
        + (
            f"; in the GUI while nobody interacts {cond['training']:.2f} ({cond['training'] / gui['headless_pairs_per_s']:.0%} "
            f"of headless), while the simulated user works {cond['training, user']:.2f} "
            f"({cond['training, user'] / gui['headless_pairs_per_s']:.0%}), from the steps the dock had received, sampled every 250 ms"
            if "training" in cond and "training, user" in cond
            else ""
        )
        + "."
        + (
            f" While training, the viewer's own process used {gui['viewer_cpu_cores']:.2f} of a core (drawing, events, "
            "the latency timer), time the training process could not use."
            if "viewer_cpu_cores" in gui
            else ""
        ),
        "",
    ]
    run = gui["runs"][0]
    fig, ax = plt.subplots(figsize=(8, 3))
    values, labels = run["lateness_ms"], [label for label, n in run["lateness_labels"] for _ in range(n)]
    for label, colour in zip(
        ("idle", "idle, user", "training", "training, user", "showing results"),
        ("#999999", "#555555", "#4c72b0", "#dd8452", "#c44e52"),
        strict=True,
    ):
        idx = [i for i, k in enumerate(labels) if k == label]
        if idx:
            ax.plot(idx, [values[i] for i in idx], ".", ms=2, color=colour, label=label)
    ax.axhline(TARGETS["latency_p99_ms"], color="k", ls="--", lw=1)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("timer firing (every 10 ms)")
    ax.set_ylabel("lateness (ms)")
    ax.set_title("event-loop lateness, first GUI run")
    ax.legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    fig.savefig(out / "speed-latency.png", dpi=110)
    plt.close(fig)
    return lines + ["![Event-loop lateness](speed-latency.png)", ""]
