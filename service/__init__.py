"""The HTTP service: explained, non-labelling indicators for authorised staff and students."""
