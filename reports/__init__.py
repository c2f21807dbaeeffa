"""Tables, figures, PDF and GIF reports from result files: not built yet."""
