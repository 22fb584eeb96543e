"""The engine: concurrent, paced, retrying, interruptible execution of image requests."""
