"""`mls2 reso check`: a RESO server judged as RESO's Data Dictionary 2.0 certification judges it."""
