"""The Flask app that receives Microsoft Graph change notifications."""
