"""The core every other package builds on: errors (:mod:`.errors`), result paths (:mod:`.paths`),
configuration (:mod:`.config`) and which dataset a command works on (:mod:`.resolve`), manifests and
sharding (:mod:`.manifest`), atomic files (:mod:`.atomic`)."""
