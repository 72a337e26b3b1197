"""Context for any position: bright-star halos, variable stars, AGN, host galaxies, error
regions, and one class with the evidence that decided it (docs/context.md)."""
