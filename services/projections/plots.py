"""Plots of the endpoints, as SVG (matplotlib, no display): a swimmer plot of the
subjects' follow-up and each subject's CAR-T kinetics curves.

They are drawn from the same figures the endpoints return (``endpoints.courses``), so
what is seen is what is counted. Output is deterministic (no date, fixed ids), so an
export made twice from the same ledger is the same bytes.
"""

from __future__ import annotations

import io
from decimal import Decimal

# Figure, not pyplot: no global state and no display backend; savefig picks the SVG one.
from matplotlib import rc_context
from matplotlib.figure import Figure

from services.projections.clinical_endpoints import Course, time_courses

_STYLE = {"svg.hashsalt": "trial-ledger", "svg.fonttype": "none", "font.size": 9}
_LEVEL_COLOURS = {1: "#9ecae1", 2: "#6baed6", 3: "#3182bd", 4: "#08519c"}
_RESPONSE_MARKERS = {"complete": ("D", "#2ca02c"), "partial": ("D", "#bcbd22"),
                     "stable": ("o", "#7f7f7f"), "progression": ("^", "#d62728")}  # fmt: skip


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    with rc_context(_STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buffer.getvalue()


def swimmer_svg(population: list[Course]) -> bytes:
    """One bar per infused subject, from the infusion to the end of follow-up, coloured
    by dose level; responses, progression and death marked on it."""
    with rc_context(_STYLE):
        figure = Figure(figsize=(8, 0.45 * max(len(population), 1) + 1.2))
        axes = figure.add_subplot()
        for row, course in enumerate(population):
            ends = [d.at for d in (*course.assessments, *course.progressions, course.death) if d]
            length = max([course.days_to(at) for at in ends], default=0)
            axes.barh(row, length, color=_LEVEL_COLOURS.get(course.dose_level or 0, "#ccc"),
                      height=0.6)  # fmt: skip
            for response in course.responses:
                marker, colour = _RESPONSE_MARKERS[str(response.value)]
                axes.plot(course.days_to(response.at), row, marker=marker, color=colour)
            if course.death is not None:
                axes.plot(course.days_to(course.death.at), row, marker="X", color="black")
        axes.set_yticks(range(len(population)),
                        [f"{c.subject_id} (DL{c.dose_level})" for c in population])  # fmt: skip
        axes.invert_yaxis()
        axes.set_xlabel("days since infusion")
        axes.set_title("Follow-up by subject: ◆ remission (green complete, olive partial), "
                       "▲ progression, ✕ death", fontsize=8)  # fmt: skip
    return _svg(figure)


def kinetics_svg(course: Course) -> bytes:
    """The subject's CAR-T concentrations over study days, one line per sample, method
    and target, on a log scale, with each assay's LLOQ dashed."""
    series = time_courses(course)["car_t_kinetics"]
    with rc_context(_STYLE):
        figure = Figure(figsize=(7, 4))
        axes = figure.add_subplot()
        for name, s in sorted(series.items()):
            days = [p["study_day"] for p in s["points"]]
            values = [max(Decimal(p["value"]), Decimal("0.1")) for p in s["points"]]
            (line,) = axes.plot(days, [float(v) for v in values], marker="o",
                                label=f"{name} ({s['unit']})")  # fmt: skip
            lloq = float(Decimal(s["points"][0]["lloq"]))
            axes.axhline(lloq, linestyle="--", linewidth=0.8, color=line.get_color())
        axes.set_yscale("log")
        axes.set_xlabel(f"study day (day {course.calendar.infusion_day} = infusion)")
        axes.set_title(f"CAR-T kinetics, subject {course.subject_id}")
        if series:
            axes.legend(fontsize=7)
    return _svg(figure)
