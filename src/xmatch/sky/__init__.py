"""Sky geometry: HEALPix access and sky-position helpers."""
