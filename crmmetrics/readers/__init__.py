"""What reads the store and shows it: exposition, scorecard, pages, alerts, dashboards, outlook; may import compute and below."""
