"""Tables, figures, PDF and GIF reports from result files; never imports training code."""
