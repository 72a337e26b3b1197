"""The search API every searchable thing offers: an in-memory :class:`~xmatch.SkyIndex`, a
:class:`~xmatch.Catalog` of the store, and (with the catalog's name first) the
:class:`~xmatch.Client` and :class:`~xmatch.AsyncClient` of a server.

Each implements :meth:`Searches.search` (one region, :mod:`xmatch.sky.regions`) and
:meth:`Searches.crossmatch`; the named searches below build the region and call ``search``,
so a cone is one code path whichever face asks for it. Names and arguments follow LSDB and
astropy: ``cone_search(ra, dec, radius_arcsec)``, ``polygon_search``, ``moc_search``,
``skymap_search``, ``crossmatch(..., radius_arcsec=...)``; radii are arcsec or angle
Quantities, positions degrees, sexagesimal strings, Quantities or a ``SkyCoord``.
"""

from __future__ import annotations

from xmatch.sky.regions import Cone, Moc, Polygon, SkyMapRegion

#: Modes of a cross-match: the closest row, the ``k`` closest, every row within the radius.
MODES = ("nearest", "k", "all")


class Searches:
    """Named searches over :meth:`search`."""

    def search(self, region, *, columns=None, limit=None, epoch=None, rank_by=None):
        """Rows inside ``region`` (a :class:`~xmatch.sky.regions.Cone`, ``Polygon``,
        ``Moc`` or ``SkyMapRegion``).

        A cone's rows come closest first, with ``separation_arcsec`` and
        ``position_angle_deg``; with ``epoch``, rows with proper motions are moved there
        first and carry their moved position (``ra_at_epoch``, ``dec_at_epoch``). Other
        regions' rows come in pixel order, or ranked by ``rank_by`` (a sky map's
        ``probdensity`` or ``probdensity_vol``, highest first); a sky map's rows carry its
        values at their position. ``limit`` keeps the first rows; the table's metadata
        holds how many the search found (:func:`xmatch.index.results.rows_found`).
        """
        raise NotImplementedError

    def crossmatch(self, ra, dec=None, *, radius_arcsec=None, mode="nearest", k=1,
                   epoch=None, columns=None):
        raise NotImplementedError

    def cone_search(self, ra, dec=None, radius_arcsec=None, *, columns=None, limit=None,
                    epoch=None):
        """Rows within ``radius_arcsec`` of one position, closest first (see
        :meth:`search`)."""
        return self.search(Cone.of(ra, dec, radius_arcsec), columns=columns, limit=limit,
                           epoch=epoch)

    def polygon_search(self, ra, dec=None, *, columns=None, limit=None):
        """Rows inside the polygon with these vertices (great-circle edges, in order)."""
        return self.search(Polygon.of(ra, dec), columns=columns, limit=limit)

    def moc_search(self, moc, *, columns=None, limit=None):
        """Rows inside a MOC: a ``mocpy.MOC``, an IVOA MOC 2.0 ASCII string
        (``"3/1-5 4/120"``) or JSON text, FITS bytes, the path of a MOC file, or order-29
        ranges; in pixel order."""
        return self.search(Moc.of(moc), columns=columns, limit=limit)

    def skymap_search(self, skymap, level=0.9, *, columns=None, limit=None, rank_by=None):
        """Rows inside the credible region at ``level`` of an LVK sky map (a
        :class:`~xmatch.sky.skymap.SkyMap`, or a path or the bytes of its file), each with
        ``probdensity`` (sr-1), ``searched_prob``, ``searched_area`` (deg2) and, for a
        catalog with distances and a map with distance layers, ``probdensity_vol``
        (Mpc-3), as ``ligo.skymap.postprocess.crossmatch`` computes them; in pixel order or
        ranked by ``rank_by``."""
        return self.search(SkyMapRegion.of(skymap, level), columns=columns, limit=limit,
                           rank_by=rank_by)
