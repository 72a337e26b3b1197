"""Pictures of a search region and the sources found in it, for ``xmatch skymap --plot`` and
``xmatch moc --plot``.

matplotlib is optional (the ``plots`` extra) and imported only here, when a plot is asked
for. Figures are drawn without pyplot, so no display or interactive backend is needed.
"""

from __future__ import annotations

import math

import numpy as np

from xmatch.errors import XmatchError

#: Regions smaller than this (deg2) are drawn zoomed in (gnomonic); larger ones all-sky.
ZOOM_MAX_AREA_DEG2 = 3000.0
#: A gnomonic view stretches badly far from its centre: a region reaching further than this
#: (deg) from its barycentre, say two lobes on opposite sides of the sky, is drawn all-sky.
ZOOM_MAX_RADIUS_DEG = 60.0
#: Width and height of the whole sky in the Aitoff projection (deg of the projection plane).
AITOFF_FOV_DEG = (4 * math.sqrt(2) * 180 / math.pi, 2 * math.sqrt(2) * 180 / math.pi)
FULL_SKY_DEG2 = 4 * math.pi * (180 / math.pi) ** 2


def plot_region(path, region, ra_deg, dec_deg, *, title: str, searched_prob=None) -> None:
    """Draw ``region`` (a ``mocpy.MOC``) filled, and the sources at (``ra_deg``,
    ``dec_deg``) as points coloured by their ``searched_prob`` (credible level) if given,
    into the PNG file ``path``.

    Zoomed in on the region when it is smaller than :data:`ZOOM_MAX_AREA_DEG2`, all-sky
    (Aitoff) otherwise.
    """
    require_matplotlib()
    from astropy.visualization.wcsaxes.frame import EllipticalFrame, RectangularFrame
    from matplotlib.figure import Figure
    from mocpy import WCS

    zoomed, centre, fov = _view(region)
    figure = Figure(figsize=(8, 7) if zoomed else (11, 6), dpi=100)
    with WCS(figure, fov=fov, center=centre, projection="TAN" if zoomed else "AIT") as wcs:
        axes = figure.add_subplot(projection=wcs, frame_class=RectangularFrame if zoomed
                                  else EllipticalFrame)
    width, height = figure.get_size_inches() * figure.dpi
    if not region.empty():
        region.fill(ax=axes, wcs=wcs, alpha=0.3, fill=True, color="tab:blue", linewidth=0)
        region.border(ax=axes, wcs=wcs, color="tab:blue", linewidth=1)
    axes.set_xlim(0, width)  # what mocpy sets too, also when there is nothing to fill
    axes.set_ylim(0, height)
    for patch in axes.patches:  # cells across the edge of the all-sky ellipse stay inside
        patch.set_clip_path(axes.coords.frame.patch)
    ra_deg, dec_deg = np.asarray(ra_deg, np.float64), np.asarray(dec_deg, np.float64)
    if len(ra_deg):
        colours = ({"c": "black"} if searched_prob is None else
                   {"c": np.asarray(searched_prob, np.float64), "cmap": "viridis_r",
                    "vmin": 0.0, "vmax": 1.0})
        points = axes.scatter(ra_deg, dec_deg, transform=axes.get_transform("icrs"),
                              s=_marker_size(len(ra_deg)), edgecolors="black",
                              linewidths=0.3, zorder=3, **colours)
        if searched_prob is not None:
            figure.colorbar(points, ax=axes, shrink=0.7,
                            label="searched probability (credible level) at the source")
    axes.coords.grid(True, color="0.5", linestyle=":", linewidth=0.6)
    axes.coords[0].set_axislabel("RA (ICRS)")
    axes.coords[1].set_axislabel("Dec (ICRS)")
    if zoomed:  # WCSAxes would label RA on the top edge too, under the title
        axes.coords[0].set_ticklabel_position("b")
        axes.coords[0].set_axislabel_position("b")
        axes.coords[1].set_ticklabel_position("l")
        axes.coords[1].set_axislabel_position("l")
    axes.set_title(title, fontsize=11)
    try:
        figure.savefig(path, dpi=figure.dpi, bbox_inches="tight")
    except (OSError, ValueError) as error:  # no such directory; a suffix with no format
        raise XmatchError(f"cannot write the plot {path}: {error}") from None


def require_matplotlib() -> None:
    """Raise a clear error, before any work is done, if matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise XmatchError("plotting needs matplotlib: pip install 'xmatch[plots]'") from None


def _view(region):
    """(zoomed, centre, field of view) of the picture of ``region``."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    area = region.sky_fraction * FULL_SKY_DEG2
    if 0 < area < ZOOM_MAX_AREA_DEG2:
        centre = region.barycenter()
        reach = region.largest_distance_from_coo_to_vertices(centre).to_value(u.deg)
        if reach < ZOOM_MAX_RADIUS_DEG:
            # Gnomonic: a point `reach` away lies tan(reach) from the centre on the plane.
            half_width = math.degrees(math.tan(math.radians(reach)))
            return True, centre, 2.3 * half_width * u.deg  # a margin around the region
    return False, SkyCoord(180, 0, unit="deg"), [fov * u.deg for fov in AITOFF_FOV_DEG]


def _marker_size(n: int) -> float:
    """Points big enough to see one source, small enough not to hide the region under many."""
    return float(np.clip(3000 / n, 2, 40))
