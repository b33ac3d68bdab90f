"""CRM data: source engines, the source checks, the importer and the demo data; may import kpi and core."""
