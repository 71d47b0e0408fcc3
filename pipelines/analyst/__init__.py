"""Analyst access: `medallion sql` over logical table names, example queries, table listing."""
