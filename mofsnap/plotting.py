"""Every plot of mofsnap, written straight to PNG files.

Figures are matplotlib ``Figure`` objects drawn by the Agg canvas, never through ``pyplot``: importing or
using this module leaves the backend of an interactive session (a notebook, an IDE) untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6.0, 4.5),
               **subplot_kw) -> tuple[Figure, np.ndarray]:
    """A figure and its grid of axes (always a 2-D array), detached from ``pyplot``'s global state."""
    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def save_figure(fig, path: str | Path) -> Path:
    """Lay out ``fig``, write it to ``path`` (PNG, 150 dpi, parent directories created) and close it."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path


def parity_axes(ax, series: Mapping[str, tuple[np.ndarray, np.ndarray]], quantity: str, unit: str) -> None:
    """Draw reference-versus-predicted points of one quantity on ``ax``.

    Parameters
    ----------
    ax : matplotlib Axes
    series : mapping of label -> (reference, predicted)
        One scatter per label (e.g. ``"train"``, ``"validation"``); the legend shows each RMSE.
    quantity, unit : str
        Axis labels, e.g. ``"energy"`` and ``"eV/atom"``.
    """
    values = [np.concatenate([np.ravel(r), np.ravel(p)]) for r, p in series.values() if np.size(r)]
    if not values:
        ax.set_visible(False)
        return
    lo, hi = float(min(v.min() for v in values)), float(max(v.max() for v in values))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=0.8, zorder=0)
    for label, (ref, pred) in series.items():
        ref, pred = np.ravel(ref), np.ravel(pred)
        if ref.size:
            rmse = float(np.sqrt(np.mean((pred - ref) ** 2)))
            ax.scatter(ref, pred, s=4, alpha=0.5, label=f"{label} (RMSE {rmse:.3g} {unit})", rasterized=True)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"reference {quantity} ({unit})")
    ax.set_ylabel(f"predicted {quantity} ({unit})")
    ax.legend(fontsize="small", loc="upper left")


def parity_figure(panels: Sequence[tuple[str, str, Mapping[str, tuple[np.ndarray, np.ndarray]]]],
                  path: str | Path, title: str | None = None) -> Path:
    """Write a row of parity plots, one per ``(quantity, unit, series)`` panel, to ``path`` (PNG)."""
    fig, axes = new_figure(1, len(panels), figsize=(4.6 * len(panels), 4.6))
    for ax, (quantity, unit, series) in zip(axes[0], panels):
        parity_axes(ax, series, quantity, unit)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def learning_curve_figure(sizes: Sequence[float], curves: Mapping[str, Mapping[str, Sequence[float]]],
                          units: Mapping[str, str], path: str | Path, xlabel: str = "training configurations",
                          labels: Sequence[str] | None = None,
                          intervals: Mapping[str, Mapping[str, Sequence[Sequence[float]]]] | None = None,
                          rises: Mapping[str, Mapping[str, Sequence[int]]] | None = None) -> Path:
    """Write errors versus training-set size on log-log axes, one panel per quantity.

    Parameters
    ----------
    sizes : sequence
        Training-set sizes (x values).
    curves : mapping quantity -> (mapping series label -> errors)
        E.g. ``{"energy": {"train": [...], "validation": [...]}, "forces": {...}}``.
    units : mapping quantity -> unit
        Axis units of each quantity.
    path : path
        PNG file to write.
    xlabel : str
        Label of the x axis.
    labels : sequence of str, optional
        Annotations of the points (e.g. the CBAD resolution that produced each training set).
    intervals : mapping quantity -> (mapping series label -> [low, high] per point), optional
        Error bars (e.g. the 95 % bootstrap intervals of test errors).
    rises : mapping quantity -> (mapping series label -> point indices), optional
        Points whose rise from the point before is beyond the noise (a paired test, which overlapping error
        bars do not show): their segment is drawn in red.
    """
    fig, axes = new_figure(1, len(curves), figsize=(4.4 * len(curves), 3.8))
    for ax, (quantity, series) in zip(axes[0], curves.items()):
        for name, errors in series.items():
            bounds = (intervals or {}).get(quantity, {}).get(name)
            spread = None if bounds is None else np.abs(np.transpose(bounds) - np.asarray(errors, dtype=float))
            ax.errorbar(sizes, errors, yerr=spread, marker="o", capsize=3, label=name)
            for n, i in enumerate((rises or {}).get(quantity, {}).get(name, [])):
                ax.plot(sizes[i - 1:i + 1], errors[i - 1:i + 1], color="tab:red", linewidth=2.5, zorder=3,
                        label="rise beyond the noise" if n == 0 else None)
        if labels is not None:
            first = next(iter(series.values()))
            for x, y, text in zip(sizes, first, labels):
                ax.annotate(text, (x, y), fontsize="x-small", textcoords="offset points", xytext=(3, 3))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{quantity} RMSE ({units[quantity]})")
        ax.legend(fontsize="small")
    return save_figure(fig, path)

def md_run_figure(frames: Sequence, path: str | Path) -> Path:
    """Write temperature, potential energy per atom and volume against time of an MD run to ``path`` (PNG).

    Parameters
    ----------
    frames : sequence of Atoms
        Frames written by :func:`mofsnap.md.run_md` (with ``info["time_fs"]``, ``info["temperature_K"]`` and
        the energy stored).
    path : path
        The PNG file.
    """
    time_ps = np.array([f.info["time_fs"] for f in frames]) / 1000.0
    panels = [("temperature (K)", [f.info["temperature_K"] for f in frames]),
              ("potential energy (eV/atom)", [f.get_potential_energy() / len(f) for f in frames]),
              ("volume (Å³)", [f.get_volume() for f in frames])]
    fig, axes = new_figure(len(panels), 1, figsize=(6.0, 7.0), sharex=True)
    for ax, (label, values) in zip(axes[:, 0], panels):
        ax.plot(time_ps, values)
        ax.set_ylabel(label)
    axes[-1, 0].set_xlabel("time (ps)")
    return save_figure(fig, path)

def structure_picture(atoms, path: str | Path) -> Path:
    """Write a picture of ``atoms`` with its unit cell, seen slightly off the z axis, to ``path`` (PNG)."""
    from ase.io import write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, atoms, format="png", rotation="10x,-10y", show_unit_cell=2, radii=0.6)
    return path


def labelling_figure(wall_times: np.ndarray, energies_per_atom: np.ndarray, title: str, path: str | Path) -> Path:
    """Write the histogram of wall time per calculation (s) and the energy per atom (eV/atom, relative to the
    lowest, in meV/atom) of each labelled configuration, side by side."""
    fig, axes = new_figure(1, 2, figsize=(9, 3.5))
    axes[0, 0].hist(wall_times, bins=30)
    axes[0, 0].set_xlabel("wall time per calculation (s)")
    axes[0, 0].set_ylabel("configurations")
    lowest = energies_per_atom.min() if len(energies_per_atom) else 0.0
    axes[0, 1].plot((energies_per_atom - lowest) * 1000.0, ".")
    axes[0, 1].set_xlabel("configuration")
    axes[0, 1].set_ylabel("energy - min (meV/atom)")
    fig.suptitle(title)
    return save_figure(fig, path)


def cbad_histograms_figure(edges: Mapping[str, np.ndarray], counts: Mapping[str, Mapping[str, np.ndarray]],
                           labels: Mapping[str, str], path: str | Path) -> Path:
    """Write training-versus-pool densities of bonds, angles and dihedrals on the CBAD bins, one panel each.

    Parameters
    ----------
    edges : mapping kind -> bin edges
    counts : mapping set -> (mapping kind -> counts per bin)
        The sets ``"training"`` and ``"pool"``; densities are normalised per set, on a log axis.
    labels : mapping kind -> x-axis label
    path : path
        PNG file to write.
    """
    fig, axes = new_figure(1, len(edges), figsize=(13, 3.8))
    for ax, (kind, e) in zip(axes[0], edges.items()):
        for name, colour in (("pool", "0.6"), ("training", "C0")):
            total = max(int(np.sum(counts[name][kind])), 1)
            ax.stairs(np.asarray(counts[name][kind]) / (total * np.diff(e)), e, fill=name == "pool", color=colour,
                      label=name)
        occupied = np.flatnonzero(np.asarray(counts["pool"][kind]) + np.asarray(counts["training"][kind]))
        if len(occupied):
            ax.set_xlim(e[occupied[0]], e[occupied[-1] + 1])
        ax.set_yscale("log")
        ax.set_xlabel(labels[kind])
        ax.set_ylabel("density (log)")
    axes[0, 0].legend()
    fig.suptitle("CBAD: training set vs candidate pool (bins = CBAD bins)")
    return save_figure(fig, path)


def learn_summary_figure(summary, path: str | Path) -> Path:
    """Write the errors per active-learning generation: training RMSE and the previous model's error on each
    generation's new labels, one panel per quantity.

    Parameters
    ----------
    summary : mofsnap.learn.LearnSummary
        The campaign's summary.
    path : path
        PNG file to write.
    """
    records = summary.generations
    n_train = [r.n_train for r in records]
    fig, axes = new_figure(1, 3, figsize=(13, 3.8))
    for ax, (quantity, unit) in zip(axes[0], (("energy", "meV/atom"), ("forces", "meV/Å"), ("stress", "MPa"))):
        train = [getattr(r.train, quantity) for r in records]
        ax.plot(n_train, train, "o-", label="training RMSE")
        unseen = [(r.n_train, getattr(r.previous_model_on_new, quantity)) for r in records
                  if r.previous_model_on_new is not None]
        if unseen:
            ax.plot(*zip(*unseen), "s--", label="previous model on new labels")
        for r, value in zip(records, train):
            ax.annotate(f"{r.temperature:.0f} K", (r.n_train, value), fontsize=7)
        ax.set_xlabel("labelled training configurations")
        ax.set_ylabel(f"{quantity} RMSE ({unit})")
        if all(value > 0 for value in train):
            ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Temperature-driven active learning")
    return save_figure(fig, path)


def spectrum_figure(frequency_cm1: np.ndarray, total: np.ndarray, partial: Mapping[str, np.ndarray], ylabel: str,
                    path: str | Path, bands: Sequence[tuple[float, float]] | None = None,
                    xmax: float | None = None, spread: tuple[np.ndarray, np.ndarray] | None = None,
                    peaks: Sequence[tuple[float, float, float]] | None = None) -> Path:
    """Write a density of states and its partial densities (cm⁻¹ below, THz above) to ``path`` (PNG).

    The one plot of the MD VDOS and of the phonon DOS.

    Parameters
    ----------
    frequency_cm1, total : arrays
        Frequency grid and total density.
    partial : mapping label -> array
        Partial densities (per atom type or element).
    ylabel : str
        Label of the density axis.
    path : path
        PNG file to write.
    bands : sequence of (lo, hi), optional
        Frequency bands (cm⁻¹) shaded grey.
    xmax : float, optional
        Upper frequency limit (cm⁻¹).
    spread : (mean, std) arrays, optional
        Mean and model spread of the total over posterior models, drawn as the band mean ± std.
    peaks : sequence of (position, height, spread), optional
        Peaks (cm⁻¹, density) marked with the model spread of their position (cm⁻¹) as horizontal error bar.
    """
    from .units import THZ_TO_CM1

    fig, axes = new_figure(1, 1, figsize=(8, 4.5))
    ax = axes[0, 0]
    ax.plot(frequency_cm1, total, color="black", lw=1.2, label="total")
    if spread is not None:
        mean, std = spread
        ax.fill_between(frequency_cm1, mean - std, mean + std, color="black", alpha=0.25, lw=0,
                        label="posterior mean ± model spread")
    if peaks:
        position, height, width = np.array(peaks, dtype=float).T
        ax.errorbar(position, height, xerr=width, fmt="v", color="black", ms=5, capsize=3,
                    label="peak: posterior mean ± model spread")
    for label, spectrum in partial.items():
        ax.plot(frequency_cm1, spectrum, lw=0.9, label=label)
    for lo, hi in bands or []:
        ax.axvspan(lo, hi, color="grey", alpha=0.1)
    if xmax is not None:
        ax.set_xlim(0, xmax)
    ax.set_xlabel("frequency (cm$^{-1}$)")
    ax.set_ylabel(ylabel)
    ax.secondary_xaxis("top", functions=(lambda x: x / THZ_TO_CM1, lambda x: x * THZ_TO_CM1)).set_xlabel(
        "frequency (THz)")
    ax.legend(fontsize=8, ncol=2)
    return save_figure(fig, path)


def vdos_vs_phonon_dos_figure(vdos, phonons, path: str | Path) -> Path:
    """Write an MD VDOS and a harmonic phonon DOS in one plot, both per atom (each integrates to 3).

    Parameters
    ----------
    vdos : mofsnap.analysis.vdos.VDOSResult
    phonons : mofsnap.analysis.phonons.PhononResult
    path : path
        PNG file: one panel for the totals and one per atom type present in both.
    """
    vdos_scale = 3.0 / vdos.dof  # the VDOS integrates to 3N - removed
    common = [t for t in phonons.partial if t in vdos.partial]
    common = common if len(common) > 1 else []  # one type: its panel would repeat the total
    fig, axes = new_figure(1 + len(common), 1, figsize=(8, 2.2 * (1 + len(common)) + 0.8), sharex=True)
    panels = [("total", vdos.total, phonons.total)] + [(t, vdos.partial[t], phonons.partial[t]) for t in common]
    for ax, (label, md, harmonic) in zip(axes[:, 0], panels):
        ax.plot(vdos.frequency_cm1, md * vdos_scale, lw=1.0, label="MD VDOS")
        ax.plot(phonons.frequency_cm1, harmonic / phonons.natoms, lw=1.0, label="harmonic phonon DOS")
        ax.set_ylabel(f"{label}\n(states/cm$^{{-1}}$/atom)", fontsize=8)
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlim(0, max(phonons.frequency_cm1.max(), 100.0))
    axes[-1, 0].set_xlabel("frequency (cm$^{-1}$)")
    return save_figure(fig, path)


def fit_scan_figure(x: np.ndarray, values: np.ndarray, errors: np.ndarray, fit_x: np.ndarray, fit_y: np.ndarray,
                    xlabel: str, ylabel: str, title: str, fit_label: str, path: str | Path) -> Path:
    """Write state-point means with error bars and the curve fitted to them to ``path`` (PNG).

    The lattice parameter against temperature and the volume against pressure of the thermal-expansion
    analysis.
    """
    fig, axes = new_figure(1, 1, figsize=(5.5, 4))
    ax = axes[0, 0]
    ax.errorbar(x, values, yerr=errors, fmt="o", capsize=3, label="NPT mean ± s.e.")
    ax.plot(fit_x, fit_y, "-", lw=1, label=fit_label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def free_energy_figures(result, directory: str | Path) -> list[Path]:
    """Write the plots of a metadynamics free energy into ``directory``.

    ``fes_2d.png`` (the surface, two CVs only), ``fes_1d.png`` (the profiles) and
    ``barrier_convergence.png`` (barrier against bias time).

    Parameters
    ----------
    result : mofsnap.analysis.metadynamics.FreeEnergy
    directory : path

    Returns
    -------
    list of Path
        The files written.
    """
    directory = Path(directory)
    written = []
    if result.surface.ndim == 2:
        fig, axes = new_figure(1, 1, figsize=(5.5, 4.5))
        image = axes[0, 0].contourf(result.axes[0], result.axes[1], result.surface.T, levels=30, cmap="viridis")
        fig.colorbar(image, ax=axes[0, 0], label="F (eV)")
        axes[0, 0].set(xlabel=result.names[0], ylabel=result.names[1], title=f"F at {result.temperature_K:g} K")
        written.append(save_figure(fig, directory / "fes_2d.png"))
    fig, axes = new_figure(1, 1, figsize=(5.5, 4))
    for name, axis, profile in zip(result.names, result.axes, result.profiles):
        axes[0, 0].plot(axis, profile, label=name)
    axes[0, 0].set(xlabel="CV", ylabel="F (eV)",
                   title=f"barrier {result.barrier:.3f} ± {result.barrier_error:.3f} eV")
    axes[0, 0].legend()
    written.append(save_figure(fig, directory / "fes_1d.png"))
    fig, axes = new_figure(1, 1, figsize=(5.5, 4))
    for k, name in enumerate(result.names):
        axes[0, 0].plot(result.times, result.barrier_history[:, k], "o-", label=name)
    axes[0, 0].set(xlabel="bias time (PLUMED time units)", ylabel="barrier (eV)", title="bias-time convergence")
    axes[0, 0].legend()
    written.append(save_figure(fig, directory / "barrier_convergence.png"))
    return written


def validation_figure(validation, runs: Sequence[Sequence], path: str | Path, potential: str) -> Path:
    """Write the closing validation of active learning: temperature and volume change against time of each
    run (the guard's stop marked), with the verdict of every check as the title.

    Parameters
    ----------
    validation : mofsnap.learn.Validation
        The verdict.
    runs : sequence of sequences of Atoms
        The frames of each of ``validation.runs`` (as written by :func:`mofsnap.md.run_md`).
    path : path
        PNG file to write.
    potential : str
        What the runs used, e.g. ``"SNAP + D3"`` (named in the panel titles).
    """
    fig, axes = new_figure(2, len(runs), figsize=(5.5 * len(runs), 6.0), sharex="col")
    for column, (run, frames) in enumerate(zip(validation.runs, runs)):
        time_ps = np.array([f.info.get("time_fs", 0.0) for f in frames]) / 1000.0
        volume = np.array([f.get_volume() for f in frames])
        axes[0, column].plot(time_ps, [f.info.get("temperature_K", np.nan) for f in frames])
        axes[0, column].axhline(run.temperature_K, color="grey", ls=":")
        axes[0, column].set_title(f"{run.temperature_K:.0f} K NPT, {potential}", fontsize=9)
        axes[0, column].set_ylabel("temperature (K)")
        axes[1, column].plot(time_ps, 100 * (volume / volume[0] - 1.0) if len(volume) else [])
        axes[1, column].set_ylabel("volume change (%)")
        axes[1, column].set_xlabel("time (ps)")
        if run.stopped and len(time_ps):
            for ax in axes[:, column]:
                ax.axvline(time_ps[-1], color="red", ls="--", label="stopped")
            axes[1, column].legend(fontsize=8)
    lines = [f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}" for c in validation.checks]
    fig.suptitle(("validation passed" if validation.passed else "VALIDATION FAILED") + "\n" + "\n".join(lines),
                 fontsize=7, ha="left", x=0.01)
    return save_figure(fig, path)
