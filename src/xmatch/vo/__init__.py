"""The IVOA face: VOTable documents for Simple Cone Search 1.1 and TAP 1.1 answers."""
