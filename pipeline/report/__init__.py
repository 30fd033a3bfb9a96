"""What people look at: pictures of stored shards (:mod:`.pictures`). The ``report`` stage (accuracy
tables, plots, training curves) will live here too."""
