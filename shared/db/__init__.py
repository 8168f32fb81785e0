"""PostgreSQL access: pool, tenant transactions, migrations, repositories."""
