"""Reports: tables, figures and the claims check, each a function of the tidy evaluation table."""
