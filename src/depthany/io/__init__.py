"""Reading images and writing depth maps, point clouds and videos."""
