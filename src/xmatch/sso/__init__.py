"""Solar-system objects: orbits, propagation, nightly ephemeris caches and their queries."""
