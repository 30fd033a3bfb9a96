"""The core every other package builds on: errors (:mod:`.errors`), result paths (:mod:`.paths`),
configuration (:mod:`.config`), manifests and sharding (:mod:`.manifest`), atomic files (:mod:`.atomic`)
and the stage contract with its failure policy (:mod:`.stage`)."""
