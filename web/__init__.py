"""The dashboard's static files, served by encmond.webapp."""
