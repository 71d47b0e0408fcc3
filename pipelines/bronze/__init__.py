"""Bronze: landed records as delivered, plus ingestion metadata (pure transformations)."""
