"""The jobs domain: the model, the DynamoDB store and the job engine shared by every Lambda."""
