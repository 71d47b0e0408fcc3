"""Gold: analyst aggregates and the ML feature table (pure transformations; declared in conf/tables/gold.yml)."""
