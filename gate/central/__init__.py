"""The central server: client, hostile-reply reader, credential sync and event upload."""
