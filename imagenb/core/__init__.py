"""The pure core: model facts and prices, sizes, requests and their validation, cost, settings."""
