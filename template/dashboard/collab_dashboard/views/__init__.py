"""The pages: each module is one part of the dashboard and only does HTTP and rendering."""
