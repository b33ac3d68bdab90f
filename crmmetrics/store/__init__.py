"""The results store (SQLModel tables, migrations) and the standards; may import data and below."""
