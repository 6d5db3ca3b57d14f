"""The Media Gateway layer (placeholder until mg-core lands)."""
