"""One screen per module; screens are imported where they are pushed, to start fast."""
