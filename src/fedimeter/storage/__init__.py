"""Storage: the schema, migrations, and the repository every service reads and writes through."""
