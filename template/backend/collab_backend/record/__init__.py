"""The shared record: entries, their files in the central bucket, the compact index, the writer."""
