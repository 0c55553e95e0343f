const c=window.AWS_CONFIG;document.getElementById("root").textContent="API "+c.API.REST.endpoint;
