"""Pure domain code: handles, models, analytics. No I/O, no imports from other layers."""
