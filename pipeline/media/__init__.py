"""Media I/O: JPEG encoding and decoding (:mod:`.jpeg`), reading videos and frame folders at a fixed rate
and size (:mod:`.video`), writing test and demo videos and finding ffmpeg (:mod:`.videoio`), and the
synthetic videos with known motion of the demo dataset (:mod:`.synthetic`)."""
