"""Reach: engagement, likers, growth, views and comparison, and the report sections built from them."""
